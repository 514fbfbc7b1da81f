"""A user file whose import fails: the error line shown must be this file's own."""

import math

VALUE = math.sqrt(-1)


def build(input_shape, num_classes, framework):
    raise AssertionError("never reached")
