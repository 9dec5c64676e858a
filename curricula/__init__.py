"""Curriculum teachers: pure objects whose state is a pytree.

* ``simple``: DomainRandomization, FixedTask, FixedSequence
* ``bandit_teacher`` + ``bandits`` + ``progress`` + ``arms``: any bandit
  algorithm with any learning-progress signal over a task set or TaskSpace bins
* ``alp_gmm`` (+ ``gmm``, EM in JAX): ALP-GMM
* ``plr`` (+ ``level_buffer``, ``scores``): PLR, robust PLR, ACCEL
* ``factory.make_teacher(cfg, task_space)``: Hydra group ``teacher/``
  (``metarl-curriculum`` is the job in ``metarl.jobs.curriculum``)
"""

from curricula.alp_gmm import ALPGMM
from curricula.arms import BinnedArms, TaskSetArms
from curricula.bandit_teacher import BanditTeacher
from curricula.base import Feedback, Teacher
from curricula.factory import make_teacher
from curricula.plr import ACCEL, PLR
from curricula.simple import DomainRandomization, FixedSequence, FixedTask

__all__ = [
    "ACCEL",
    "ALPGMM",
    "BanditTeacher",
    "BinnedArms",
    "DomainRandomization",
    "Feedback",
    "FixedSequence",
    "FixedTask",
    "PLR",
    "TaskSetArms",
    "Teacher",
    "make_teacher",
]
