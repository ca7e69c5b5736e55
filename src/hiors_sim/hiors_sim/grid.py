"""Spatial generalisation: object start positions on a checkerboard grid of train and test cells."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """rows x cols cells of `cell` metres (x along rows, y along columns) centred on `center` (x, y).

    Cell k = row * cols + col. Checkerboard colouring: (row + col) even = "black" = train cells, odd = "white" =
    test cells (`train_color="white"` swaps them).
    """

    center: tuple[float, float]
    rows: int = 3
    cols: int = 3
    cell: tuple[float, float] = (0.04, 0.04)
    train_color: str = "black"
    margin: float = 0.15  # fraction of the cell kept free at each border when sampling inside a cell

    def __post_init__(self):
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"grid needs at least one row and column, got {self.rows}x{self.cols}")
        if self.train_color not in ("black", "white"):
            raise ValueError(f"train_color must be 'black' or 'white', got {self.train_color!r}")

    @property
    def n_cells(self) -> int:
        return self.rows * self.cols

    def is_train(self, k: int) -> bool:
        r, c = divmod(self._check(k), self.cols)
        black = (r + c) % 2 == 0
        return black if self.train_color == "black" else not black

    def train_cells(self) -> list[int]:
        return [k for k in range(self.n_cells) if self.is_train(k)]

    def test_cells(self) -> list[int]:
        return [k for k in range(self.n_cells) if not self.is_train(k)]

    def cell_center(self, k: int) -> np.ndarray:
        r, c = divmod(self._check(k), self.cols)
        x = self.center[0] + (r - (self.rows - 1) / 2) * self.cell[0]
        y = self.center[1] + (c - (self.cols - 1) / 2) * self.cell[1]
        return np.array([x, y])

    def sample(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """A uniformly random (x, y) inside cell k, away from its borders by `margin`."""
        half = (0.5 - self.margin) * np.asarray(self.cell)
        return self.cell_center(k) + rng.uniform(-half, half)

    def pick_cell(self, rng: np.random.Generator, k: int = -1, split: str = "train") -> int:
        """k itself, or for k < 0 a random cell of `split` ("train", "test" or "all")."""
        if k >= 0:
            return self._check(k)
        cells = {"train": self.train_cells, "test": self.test_cells, "all": lambda: list(range(self.n_cells))}
        if split not in cells:
            raise ValueError(f"split must be one of {sorted(cells)}, got {split!r}")
        pool = cells[split]() or list(range(self.n_cells))
        return int(pool[rng.integers(len(pool))])

    def _check(self, k: int) -> int:
        if not 0 <= int(k) < self.n_cells:
            raise ValueError(f"cell {k} outside the {self.rows}x{self.cols} grid (0..{self.n_cells - 1})")
        return int(k)
