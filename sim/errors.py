"""The one kind of error bad input raises: a list of ``field: problem`` lines."""

from __future__ import annotations


class InputError(ValueError):
    """Input that cannot be used; ``problems`` holds one line per problem, each naming its field."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))
