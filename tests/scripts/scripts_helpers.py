"""The scripts and ``[scripts.*]`` tables the script-run tests launch."""

from __future__ import annotations

from support.projects import QUICKSTART

__all__ = ["LM_SCRIPT", "PROJECT_FILES", "TABLES"]

#: A plain argparse script (no workbench import) that prints word-LM lines. Attempt 1 runs
#: until a "go" file exists (or forever: the stop test), later attempts finish at once.
LM_SCRIPT = '''
import argparse, os, sys, time

parser = argparse.ArgumentParser()
parser.add_argument("--lines", type=int, default=3)
parser.add_argument("--lr", type=float, default=20.0)
parser.add_argument("--go", default="")
parser.add_argument("--fail", default="no")
parser.add_argument("--token", default="")
parser.add_argument("--resume", default="")
parser.add_argument("--exit-on-int", type=int, default=130)
parser.add_argument("extra", nargs="*")
args = parser.parse_args()

print("token ok" if args.token == "hunter2" else f"token {args.token!r}", flush=True)
print(f"resume from {os.path.basename(args.resume)}" if args.resume else "fresh start", flush=True)
try:
    for i in range(1, args.lines + 1):
        loss = 7.0 / i
        print(f"| epoch   1 | {i * 200:5d}/ 2983 batches | lr {args.lr:.2f} | ms/batch 45.21 | "
              f"loss {loss:5.2f} | ppl {2.0 ** loss:8.2f}", flush=True)
    print(f"| end of epoch   1 | time: 1.50s | valid loss  5.80 | valid ppl   330.25", flush=True)
    os.makedirs(os.environ["WORKBENCH_ARTIFACTS"], exist_ok=True)
    with open(os.path.join(os.environ["WORKBENCH_ARTIFACTS"], "ckpt-001.txt"), "w") as fh:
        fh.write("epoch 1")
    if args.fail != "no":
        print("Traceback (most recent call last):", flush=True)
        print(f"ValueError: {args.fail}", flush=True)
        sys.exit(3)
    if args.go and os.environ.get("WORKBENCH_ATTEMPT") == "1":
        print("waiting", flush=True)
        while not os.path.exists(args.go):
            time.sleep(0.05)
        import helper  # imported now: after the test has edited the project's copy
        print(f"helper says {helper.VERSION}", flush=True)
except KeyboardInterrupt:
    print("Exiting from training early", flush=True)
    sys.exit(args.exit_on_int)
'''

HELPER = 'VERSION = "original"\n'

TABLES = '''
[scripts.lm]
command = ["python", "scripts/lm.py", "--lines", "{lines}", "--lr", "{lr}", "--go", "{go}",
           "--token", "{token}", "API_KEY=not-for-the-index", "--fail", "{fail}"]
summary = "Word-LM lines, no workbench import"
secret = ["token"]
[scripts.lm.params]
lines = 4
lr = 20.0
go = ""
token = ""
fail = "no"

[scripts.lmckpt]
command = ["python", "scripts/lm.py", "--go", "{go}"]
resume = ["--resume", "{checkpoint}"]
checkpoints = "artifacts/ckpt-*.txt"
[scripts.lmckpt.params]
go = ""
'''

PROJECT_FILES = {
    "scripts/lm.py": LM_SCRIPT,
    "scripts/helper.py": HELPER,
    "workbench.toml": (QUICKSTART / "workbench.toml").read_text() + TABLES,
}
