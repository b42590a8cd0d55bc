"""redundancy: measure and remove redundancy in pretrained transformer models.

Stages, one subpackage each (dependencies point one way):
``data -> extract -> store -> {general, probe} -> select -> pipeline -> report``; ``cli`` sits on top.
"""

__version__ = "0.1.0"
