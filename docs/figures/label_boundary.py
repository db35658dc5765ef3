"""Draws docs/figures/label_boundary.png: what a GBM label must cover.

python docs/figures/label_boundary.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

OUT = Path(__file__).with_suffix(".png")


def main() -> None:
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    x = np.linspace(0, 10, 400)
    for ax, title, lo, hi, colour in (
        (axes[0], "right: endothelial to podocyte cell membrane", 3.0, 6.6, "tab:green"),
        (
            axes[1],
            "wrong: the dark lamina densa only (every figure reads low)",
            4.0,
            5.5,
            "tab:red",
        ),
    ):
        ax.add_patch(Rectangle((0, 0), 10, 3.0, color="#d9d2c3"))  # capillary lumen side
        ax.fill_between(x, 2.4, 3.0 + 0.15 * np.sin(3 * x), color="#8c7f6a")  # endothelium
        ax.add_patch(Rectangle((0, 3.0), 10, 1.0, color="#b7ad9c"))  # lamina rara interna
        ax.add_patch(Rectangle((0, 4.0), 10, 1.5, color="#4b4339"))  # lamina densa
        ax.add_patch(Rectangle((0, 5.5), 10, 1.1, color="#b7ad9c"))  # lamina rara externa
        for left in np.arange(0.2, 10, 1.4):  # podocyte foot processes
            ax.add_patch(Rectangle((left, 6.6), 1.0, 1.4, color="#8c7f6a"))
        ax.add_patch(Rectangle((0, 8.0), 10, 2.0, color="#e8e2d6"))  # urinary space
        ax.add_patch(Rectangle((0.4, lo), 9.2, hi - lo, fill=False, ec=colour, lw=2.5))
        ax.annotate("", (9.8, lo), (9.8, hi), arrowprops={"arrowstyle": "<->", "color": colour})
        ax.set_title(title, fontsize=9, color=colour)
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        ax.set_xticks([])
    axes[0].set_yticks([1.2, 2.7, 3.5, 4.75, 6.05, 7.3, 9.0])
    axes[0].set_yticklabels(
        [
            "capillary lumen",
            "endothelium",
            "lamina rara interna",
            "lamina densa",
            "lamina rara externa",
            "podocyte foot processes",
            "urinary space",
        ],
        fontsize=8,
    )
    fig.suptitle(
        "What a GBM label covers (schematic cross-section of a capillary wall)", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
