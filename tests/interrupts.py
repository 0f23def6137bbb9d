"""Test helper: interrupt an engine run as Ctrl-C inside a step would."""


class InterruptAt:
    """An engine callback raising ``KeyboardInterrupt`` once, at the check point of ``iteration``."""

    def __init__(self, iteration):
        self.iteration, self.fired = iteration, False

    def __call__(self, opt):
        if opt.iteration == self.iteration and not self.fired:
            self.fired = True
            raise KeyboardInterrupt
