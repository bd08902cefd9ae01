"""MyST Markdown to the plain Markdown that Jupyter, JupyterLab and Colab render.

The chapters are MyST notebooks: their Markdown cells hold roles (``{eq}`label```), directives
(fenced with ``{name}``), label lines (``(label)=``) and labelled equations (``$$ ... $$ (label)``),
which Sphinx resolves on the site and a plain notebook shows as literal text. :func:`convert`
rewrites one cell's source into plain Markdown; what only the build knows (the number of an
equation, the text and address of a reference, a glued value) comes from a :class:`Resolver`,
which ``notebook_launch`` implements on Sphinx's resolved environment. This module depends on
nothing but the standard library, so its rules are tested without a build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

# A role: {name}`content`, with any number of backticks (MyST allows ``{name}``a`b```).
ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:+.-]*)\}(?P<ticks>`+)(?P<content>.+?)(?P=ticks)(?!`)",
                  re.DOTALL)
# An inline code span, which keeps whatever it holds (a role written as an example, say).
CODE_SPAN = re.compile(r"(?P<ticks>`+)(?!`).+?(?<!`)(?P=ticks)(?!`)", re.DOTALL)
# A labelled display equation: $$ ... $$ (label).
LABELLED_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$[ \t]*\((?P<label>[^()\s]+)\)", re.DOTALL)
# The opening fence of a directive (``` or :::, at least three) and of a plain code block.
DIRECTIVE_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:.-]+)\}"
                             r"[ \t]*(?P<argument>.*?)[ \t]*$")
CODE_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})")
# A Markdown link to a label (#label) or to another page of the book (page.md#anchor).
LOCAL_LINK = re.compile(r"\]\((?P<target>#[^()\s]+|[\w./-]+\.(?:md|ipynb)(?:#[^()\s]*)?)\)")
LABEL_LINE = re.compile(r"^[ \t]*\([^()\s]+\)=[ \t]*$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):[ \t]*(?P<value>.*)$")
# What a notebook viewer cannot show as MyST: the test scan uses the same patterns.
LEFTOVER = {
    "role": re.compile(r"\{[A-Za-z][\w:+.-]*\}`"),
    "label line": re.compile(r"^[ \t]*\([^()\s]+\)=[ \t]*$", re.MULTILINE),
    "labelled equation": re.compile(r"\$\$[ \t]*\([^()\s]+\)[ \t]*$", re.MULTILINE),
    "local link": LOCAL_LINK,
}

ADMONITIONS = {"admonition", "attention", "caution", "danger", "error", "hint", "important",
               "note", "seealso", "tip", "warning", "margin", "sidebar", "topic", "dropdown"}
TITLES = {"seealso": "See also"}
CODE_DIRECTIVES = {"code", "code-block", "sourcecode"}


class Resolver(Protocol):
    """What the build knows and the source does not."""

    def role(self, name: str, content: str) -> str:
        """Return the Markdown that replaces the role ``{name}`content```."""

    def equation_number(self, label: str) -> str:
        """Return the number the site shows beside the equation ``label``."""

    def number(self, kind: str, label: str) -> str:
        """Return the number of the figure or exercise ``label`` (``kind``: figure, exercise)."""

    def image_url(self, path: str) -> str:
        """Return the address of the image ``path`` (relative to the page) on the site."""

    def link_url(self, target: str) -> str:
        """Return the address on the site of a link to ``#label`` or ``page.md#anchor``."""

    def elsewhere(self, name: str) -> str:
        """Return Markdown for the directive ``name`` that only the site can show."""


def leftovers(markdown: str) -> list[str]:
    """Return each MyST construct left in ``markdown`` (outside code), as ``'kind: text'``."""
    directives, text = _without_code(markdown)
    return [f"directive: {line.strip()}" for line in directives] + [
        f"{kind}: {match.group(0).strip()}" for kind, pattern in LEFTOVER.items()
        for match in pattern.finditer(text)]


def _without_code(markdown: str) -> tuple[list[str], str]:
    """Return the opening lines of ``markdown``'s directives, and its text without them, their
    closing fences, plain code blocks and inline code spans."""
    lines: list[str] = []
    directives: list[str] = []  # the opening lines
    open_fences: list[str] = []  # the fences of the directives open at this line
    code = None  # the fence of the open code block
    for line in markdown.splitlines():
        stripped = line.strip()
        if code is not None:
            if _closes(stripped, code):
                code = None
        elif open_fences and _closes(stripped, open_fences[-1]):
            open_fences.pop()
        elif match := DIRECTIVE_FENCE.match(line):
            open_fences.append(match.group("fence"))
            directives.append(line)
        elif match := CODE_FENCE.match(line):
            code = match.group("fence")
        else:
            lines.append(line)
    return directives, _outside_code("\n".join(lines), lambda part: part, keep_code=False)


def _closes(stripped: str, fence: str) -> bool:
    """Whether a (stripped) line closes a block opened with ``fence``."""
    return stripped.startswith(fence) and not stripped.strip(fence[0])


@dataclass
class _Directive:
    name: str
    argument: str
    options: dict[str, str] = field(default_factory=dict)
    body: str = ""


def convert(source: str, resolver: Resolver) -> str:
    """Return the MyST Markdown ``source`` of one cell as plain Markdown."""
    out: list[str] = []
    text: list[str] = []  # lines of ordinary Markdown, converted together (equations span lines)

    def flush() -> None:
        if text:
            out.append(_inline("\n".join(text), resolver))
            text.clear()

    lines = source.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = DIRECTIVE_FENCE.match(line)
        code = CODE_FENCE.match(line)
        if directive:
            flush()
            end = _closing(lines, i + 1, directive.group("fence"))
            parsed = _parse(directive.group("name"), directive.group("argument"), lines[i + 1:end])
            out.append(_indent(_directive(parsed, resolver), directive.group("indent")))
            i = end + 1
        elif code:
            flush()
            end = _closing(lines, i + 1, code.group("fence"))
            out.append("\n".join(lines[i:end + 1]))
            i = end + 1
        elif LABEL_LINE.match(line):
            i += 1
        else:
            text.append(line)
            i += 1
    flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")


def _closing(lines: list[str], start: int, fence: str) -> int:
    """Return the index of the line that closes ``fence`` (the last line if none does)."""
    for j in range(start, len(lines)):
        if _closes(lines[j].strip(), fence):
            return j
    return len(lines)


def _parse(name: str, argument: str, lines: list[str]) -> _Directive:
    """Split a directive's lines into its options (``:key: value`` or YAML) and its body."""
    directive = _Directive(name, argument)
    i = 0
    if lines and lines[0].strip() == "---":  # options as a YAML block
        end = next((j for j in range(1, len(lines)) if lines[j].strip() == "---"), len(lines))
        for line in lines[1:end]:
            key, _, value = line.partition(":")
            directive.options[key.strip()] = value.strip()
        i = end + 1
    else:
        while i < len(lines) and (match := OPTION.match(lines[i].strip())):
            directive.options[match.group("key")] = match.group("value")
            i += 1
    directive.body = "\n".join(lines[i:]).strip("\n")
    return directive


def _indent(text: str, indent: str) -> str:
    return "\n".join(indent + line if line else line for line in text.splitlines())


def _quote(text: str) -> str:
    """Return ``text`` as a Markdown block quote."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def _directive(directive: _Directive, resolver: Resolver) -> str:
    """Return the plain Markdown of one directive."""
    name, argument, options = directive.name, directive.argument, directive.options
    body = convert(directive.body, resolver) if directive.body else ""
    if name in ADMONITIONS:
        title = argument or TITLES.get(name, name.capitalize())
        head = f"**{_inline(title, resolver)}**"
        return _quote(f"{head}\n\n{body}" if body else head)
    if name in {"figure", "image"}:
        alt = options.get("alt", "")
        image = f"![{alt}]({resolver.image_url(argument)})"
        if name == "image" or not body:
            return image
        label = options.get("name")
        number = f" {resolver.number('figure', label)}" if label else ""
        return f"{image}\n\n**Figure{number}.** {body}"
    if name == "math":
        label = options.get("label")
        tag = f" \\tag{{{resolver.equation_number(label)}}}" if label else ""
        return f"$$\n{directive.body.strip()}{tag}\n$$"
    if name in CODE_DIRECTIVES:
        return f"```{argument}\n{directive.body}\n```"
    if name in {"exercise", "exercise-start"}:
        label = options.get("label")
        number = f" {resolver.number('exercise', label)}" if label else ""
        title = f" ({_inline(argument, resolver)})" if argument else ""
        return f"**Exercise{number}{title}.** {body}".rstrip()
    if name in {"solution", "solution-start"}:
        head = f"**Solution to Exercise {resolver.number('exercise', argument)}.**"
        return f"{head} {body}".rstrip()
    if name in {"solution-end", "exercise-end"}:
        return ""
    return resolver.elsewhere(name)


def _inline(text: str, resolver: Resolver) -> str:
    """Replace the roles and equation labels of a run of ordinary Markdown."""

    def equation(match: re.Match[str]) -> str:
        number = resolver.equation_number(match.group("label"))
        return f"$${match.group('body').rstrip()} \\tag{{{number}}}$$"

    text = LABELLED_MATH.sub(equation, text)
    def change(part: str) -> str:
        part = ROLE.sub(lambda m: resolver.role(m.group("name"), m.group("content")), part)
        return LOCAL_LINK.sub(lambda m: f"]({resolver.link_url(m.group('target'))})", part)

    return _outside_code(text, change)


def _outside_code(text: str, change: Callable[[str], str], keep_code: bool = True) -> str:
    """Apply ``change`` to ``text`` except inside inline code spans (not those of a role), which
    are kept as they are or, with ``keep_code`` false, dropped."""
    parts, last = [], 0
    for match in CODE_SPAN.finditer(text):
        if match.start() > 0 and text[match.start() - 1] == "}":
            continue  # the backticks of a role
        parts.append(change(text[last:match.start()]))
        parts.append(match.group(0) if keep_code else "")
        last = match.end()
    parts.append(change(text[last:]))
    return "".join(parts)
