"""Errors the CLI turns into one readable line and a non-zero exit."""


class ReplybotError(Exception):
    """Base class: anything a user can fix, reported without a traceback."""

    exit_code = 1


class CorpusError(ReplybotError, ValueError):
    """intents/, scripts_corpus/ or a shop file is broken; carries one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class InputError(ReplybotError, ValueError):
    """A message, context file or option value cannot be used."""

    exit_code = 2


class MissingPolicyValue(ReplybotError, KeyError):
    """A draft names a $placeholder that the shop policy does not define."""

    def __str__(self) -> str:  # KeyError would add quotes
        return str(self.args[0])


class DatasetError(ReplybotError, ValueError):
    """A labelled-dialogue file is broken; carries one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class ModelError(ReplybotError, RuntimeError):
    """The embedding model cannot be prepared or loaded."""


class ClipboardError(ReplybotError, RuntimeError):
    """No clipboard backend is available."""
