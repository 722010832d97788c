"""The rule-file lexer and its error reporting: text -> tokens, problems -> messages.

Tokens are words, strings, punctuation, newlines and the end of the file, each
with its file, line and column. A problem (error or warning) is reported as
`FILE:LINE:COLUMN: severity: reason`, with the source line and a caret under
the place (`Problem.render`); an unknown word gets a "did you mean" suggestion
(`suggest`). `RuleFileError` carries every problem of a file at once. The
grammar that reads the tokens is firewall/parser.py.

Touches nothing: text in, tokens and messages out.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from .rules import Location

MAX_DEFINE_DEPTH = 16  # a `$name` may expand to another this many times

@dataclass
class Problem:
    """One error or warning at a place in a rule file."""

    location: Location
    message: str
    severity: str = "error"
    source_line: str = ""
    length: int = 1

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"

    def render(self) -> str:
        """The message, the source line and a caret under the problem."""
        text = str(self)
        if self.source_line:
            line = self.source_line.rstrip("\n").expandtabs(1)
            text += f"\n    {line}\n    {' ' * (self.location.column - 1)}"
            text += "^" * max(1, min(self.length, len(line) - self.location.column + 1))
        return text


class RuleFileError(ValueError):
    """A rule file (or rule text) with errors; `problems` lists them (and any warnings)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.errors = [p for p in problems if p.severity == "error"]
        super().__init__("\n".join(str(p) for p in self.errors))

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)


# ==========================================================================================
# Tokens
# ==========================================================================================
WORD = "word"
STRING = "string"
PUNCT = "punct"
NEWLINE = "newline"
EOF = "eof"

_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "_.:/*-@$~?")
_PUNCT = frozenset("{},;=()|&!")


@dataclass
class Token:
    kind: str
    text: str
    file: str
    line: int
    column: int

    @property
    def location(self) -> Location:
        return Location(self.file, self.line, self.column)


class AbandonStatement(Exception):
    """Raised to stop parsing the current statement after recording a problem."""


def tokenize(text: str, file: str, report: Callable[[Problem], None]) -> list[Token]:
    tokens: list[Token] = []
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        i, n = 0, len(line)
        continued = False
        while i < n:
            c = line[i]
            if c in " \t\r":
                i += 1
            elif c == "#":
                break
            elif c == "\\" and line[i + 1:].strip() == "":
                continued = True
                break
            elif c == '"':
                j = i + 1
                chars = []
                while j < n and line[j] != '"':
                    if line[j] == "\\" and j + 1 < n:
                        j += 1
                    chars.append(line[j])
                    j += 1
                if j >= n:
                    report(Problem(Location(file, number, i + 1), "unterminated string "
                                   "(a string ends with \" on the same line)", "error", line,
                                   n - i))
                    break
                tokens.append(Token(STRING, "".join(chars), file, number, i + 1))
                i = j + 1
            elif line.startswith(("==", "!="), i):
                tokens.append(Token(PUNCT, line[i:i + 2], file, number, i + 1))
                i += 2
            elif c in _PUNCT:
                tokens.append(Token(PUNCT, "!=" if c == "!" else c, file, number, i + 1))
                i += 1
            elif c in _WORD_CHARS:
                j = i
                while j < n and line[j] in _WORD_CHARS:
                    j += 1
                word = line[i:j]
                tokens.append(Token(PUNCT if word == "/" else WORD, word, file, number, i + 1))
                i = j
            else:
                report(Problem(Location(file, number, i + 1), f"unexpected character {c!r}",
                               "error", line))
                i += 1
        if not continued:
            tokens.append(Token(NEWLINE, "\n", file, number, len(line) + 1))
    tokens.append(Token(EOF, "", file, len(lines), 1))
    return tokens


def suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def describe(tok: Token) -> str:
    if tok.kind == EOF:
        return "the end of the file"
    if tok.kind == NEWLINE:
        return "the end of the line"
    if tok.kind == STRING:
        return f'"{tok.text}"'
    return repr(tok.text)


class TokenStream:
    """Tokens read one at a time, `$name` defines expanded on the way, with the parser's
    error primitives (`fail` records a problem and abandons the statement) and the
    resynchronisation after an error."""

    def __init__(self, tokens: list[Token], report: Callable[[Problem], None],
                 defines: dict[str, list[Token]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.report = report
        self.defines = defines
        self.expansions = 0

    def peek(self) -> Token:
        self._expand()
        return self.tokens[self.pos]

    def next(self) -> Token:
        self._expand()
        tok = self.tokens[self.pos]
        if tok.kind != EOF:
            self.pos += 1
        return tok

    def _expand(self) -> None:
        """Replace a `$name` at the current position by the define's tokens."""
        for _ in range(MAX_DEFINE_DEPTH):
            tok = self.tokens[self.pos]
            if tok.kind != WORD or not tok.text.startswith("$"):
                return
            name = tok.text[1:]
            body = self.defines.get(name)
            if body is None:
                self.fail(tok, f"undefined variable ${name}"
                          + suggest(name, list(self.defines)))
            self.expansions += 1
            if self.expansions > 10000:
                self.fail(tok, "too many variable expansions (a define that uses itself?)")
            moved = [Token(t.kind, t.text, tok.file, tok.line, tok.column) for t in body]
            self.tokens[self.pos:self.pos + 1] = moved
        self.fail(self.tokens[self.pos], "variables nest too deeply")

    def at_end_of_statement(self) -> bool:
        tok = self.peek()
        return tok.kind in (NEWLINE, EOF) or (tok.kind == PUNCT and tok.text in (";", "}"))

    def fail(self, tok: Token, message: str, length: int | None = None) -> NoReturn:
        self.report(Problem(tok.location, message, "error",
                                length=length or max(1, len(tok.text))))
        raise AbandonStatement

    def warn(self, tok: Token | Location, message: str, length: int = 1) -> None:
        location = tok.location if isinstance(tok, Token) else tok
        self.report(Problem(location, message, "warning", length=length))

    def expect_word(self, what: str) -> Token:
        tok = self.next()
        if tok.kind != WORD:
            self.fail(tok, f"expected {what}, found {describe(tok)}")
        return tok

    def expect_punct(self, text: str) -> Token:
        tok = self.next()
        if tok.kind != PUNCT or tok.text != text:
            self.fail(tok, f"expected {text!r}, found {describe(tok)}")
        return tok

    def skip_statement(self) -> None:
        """Resynchronise after an error: skip to the end of the statement."""
        depth = 0
        while True:
            tok = self.tokens[self.pos]
            if tok.kind == EOF:
                return
            if tok.kind == PUNCT and tok.text == "{":
                depth += 1
            elif tok.kind == PUNCT and tok.text == "}":
                if depth == 0:
                    return
                depth -= 1
            elif depth == 0 and (tok.kind == NEWLINE or (tok.kind == PUNCT
                                                         and tok.text == ";")):
                return
            self.pos += 1

    def skip_separators(self) -> None:
        while True:
            tok = self.peek()
            if tok.kind == NEWLINE or (tok.kind == PUNCT and tok.text == ";"):
                self.pos += 1
            else:
                return

    def end_statement(self) -> None:
        tok = self.peek()
        if tok.kind in (NEWLINE, EOF) or (tok.kind == PUNCT and tok.text == "}"):
            return
        if tok.kind == PUNCT and tok.text == ";":
            self.pos += 1
            return
        self.fail(tok, f"expected the end of the statement, found {describe(tok)}")
