"""`python -m fixedpoint.runtime [NAME]`: the runtime profiles, or one profile's recipes per layer
type with their sources, as markdown tables (docs/runtimes.md holds this output)."""
import sys

from . import recipes, runtimes


def _markdown(frame) -> str:
    cells = lambda row: "| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |"  # noqa: E731
    return "\n".join([cells(frame.columns), "|" + "---|" * len(frame.columns),
                      *(cells(row) for row in frame.itertuples(index=False))])


def main(argv) -> int:
    if argv:
        for name in argv:
            table = recipes(name).drop(columns="Runtime")
            print(f"### `{name}`\n\n{_markdown(table)}\n")
    else:
        print(_markdown(runtimes()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
