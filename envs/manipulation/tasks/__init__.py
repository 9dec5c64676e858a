"""Every manipulation task, collected from the family modules (each exports ``TASKS``).

The shared rules live beside them: ``object_rules`` (free objects, for pegs, balls_and_blocks and tools) and
``fixture_rules`` (jointed fixtures, for buttons and windows_and_knobs).
"""

from __future__ import annotations

from envs.manipulation.tasks import balls_and_blocks, buttons, doors_drawers, pegs, pucks, tools, windows_and_knobs

FAMILIES = (pucks, pegs, balls_and_blocks, tools, doors_drawers, buttons, windows_and_knobs)
TASKS = {task.name: task for family in FAMILIES for task in family.TASKS}
