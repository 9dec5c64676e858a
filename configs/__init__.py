"""The Hydra config tree, shipped as package data so console scripts find it from any directory."""
