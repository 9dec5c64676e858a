"""Curriculum teachers: pure objects whose state is a pytree."""

from curricula.base import Feedback, Teacher

__all__ = ["Feedback", "Teacher"]
