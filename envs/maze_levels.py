"""Held-out named mazes for UED evaluation, as 13x13 ASCII layouts.

Layouts are original designs in the style of the PLR/ACCEL evaluation mazes:
room grids, concentric and single-spiral labyrinths, and perfect (tree) mazes on
a 7x7 lattice of cells. Characters (parsed by :func:`envs.maze.level_from_string`):

* ``#`` wall, ``.`` free, ``G`` goal
* ``>`` ``v`` ``<`` ``^`` agent start facing right / down / left / up

Rows are ``y`` (top to bottom), columns are ``x`` (left to right). Every layout
is solvable (checked in ``tests/test_maze.py``).
"""

from __future__ import annotations

from types import MappingProxyType


def _layout(*rows: str) -> str:
    return "\n".join(rows)


_LAYOUTS = {
    # 4x4 rooms (sizes 3,2,2,3) with one doorway per shared wall segment.
    "SixteenRooms": _layout(
        "......#..#...",
        ".>.#.....#...",
        "...#..#......",
        ".####.#.##.##",
        "...#.....#...",
        "......#......",
        "##.##.#.####.",
        "......#......",
        "...#.....#...",
        "#.###.#.###.#",
        "......#..#...",
        "...#.....#.G.",
        "...#..#......",
    ),
    # Same room grid, but doorways form a snake through the rooms.
    "SixteenRooms2": _layout(
        "v............",
        "...#..#..#...",
        "...#..#..#...",
        "#######.###.#",
        "...#..#..#...",
        ".............",
        "#.###########",
        ".............",
        "...#..#..#...",
        "############.",
        "...#..#..#...",
        "...#..#..#...",
        "G............",
    ),
    # Three concentric rings with alternating gaps; goal in the centre.
    "Labyrinth": _layout(
        ".............",
        ".###########.",
        ".#.........#.",
        ".#.###.###.#.",
        ".#.#.#...#.#.",
        ".#.#.###.#.#.",
        ".#.#.#G#.#.#.",
        ".#.#.#.#.#.#.",
        ".#.#.....#.#.",
        ".#.#######.#.",
        ".#...#.....#.",
        ".#####.#####.",
        "......^......",
    ),
    # Labyrinth mirrored left-right.
    "LabyrinthFlipped": _layout(
        ".............",
        ".###########.",
        ".#.........#.",
        ".#.###.###.#.",
        ".#.#...#.#.#.",
        ".#.#.###.#.#.",
        ".#.#.#G#.#.#.",
        ".#.#.#.#.#.#.",
        ".#.#.....#.#.",
        ".#.#######.#.",
        ".#.....#...#.",
        ".#####.#####.",
        "......^......",
    ),
    # A single corridor spiralling clockwise into the centre.
    "Labyrinth2": _layout(
        ">............",
        "############.",
        "...........#.",
        ".#########.#.",
        ".#.......#.#.",
        ".#.#####.#.#.",
        ".#.#..G#.#.#.",
        ".#.#.###.#.#.",
        ".#.#.....#.#.",
        ".#.#######.#.",
        ".#.........#.",
        ".###########.",
        ".............",
    ),
    # Perfect maze on the 7x7 lattice; the goal is the cell farthest from the start.
    "StandardMaze": _layout(
        "G#.........#.",
        ".###.#####.#.",
        ".#...#.....#.",
        ".#.###.#####.",
        ".#...#.......",
        ".###.#######.",
        ".....#.#.....",
        "######.#.####",
        ".....#...#...",
        ".###.#.#####.",
        "...#.#.#.....",
        ".#.###.###.#.",
        "^#.........#.",
    ),
    # Lattice maze with a few loops.
    "StandardMaze2": _layout(
        ".#.....#....<",
        ".#.#.#.#####.",
        ".....#.....#.",
        "######.#.#.#.",
        ".....#...#.#.",
        ".###.#####.#.",
        "...#.....#...",
        ".#.#####.###.",
        ".#.#...#...#.",
        ".#.#.#.###.#.",
        ".#...#.......",
        ".############",
        "............G",
    ),
    # Lattice maze with more loops (several routes of different length).
    "StandardMaze3": _layout(
        ">....#.......",
        "####.#.#.###.",
        ".....#.#.....",
        ".#####.#.####",
        ".#.#.....#..G",
        ".#.#.#.#.#.#.",
        ".#...#.....#.",
        ".#.###.#####.",
        ".#...#...#.#.",
        ".###.###.#.#.",
        ".....#...#...",
        ".###.#.#.#.##",
        ".......#.....",
    ),
}

#: name -> ASCII layout (read-only).
NAMED_LAYOUTS = MappingProxyType(_LAYOUTS)
