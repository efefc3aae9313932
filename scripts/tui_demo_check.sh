#!/usr/bin/env bash
# Try the app as a new user would, in a real terminal (tmux), at 140x40 and at 80x24.
#
# For each size: a fresh copy of sample_projects/quickstart (a new git repository), the app
# started in a detached tmux session, then keys pressed one at a time -- launch a run from the
# form (epochs 1), watch it finish in the table, open its run screen (Overview, Metrics,
# Output), launch a second run (another lr), mark both and compare them, quit; open the app
# again (the marks and their overlay are still there), launch the spiral classifier and see
# its logged images in its run screen, quit -- with a `tmux capture-pane -p` saved after
# each step. A step whose expected text does not appear in
# time fails the check, naming the step and its capture.
#
#   scripts/tui_demo_check.sh [CAPTURE_DIR]     (default: ./tui-demo-captures)
#
# For developers, not CI: it trains two short real runs per size (a minute or two in all).
# Environment: WORKBENCH (the command; default .venv/bin/workbench), SIZES ("140x40 80x24"),
# STEP_TIMEOUT (seconds a step may take; default 60), RUN_TIMEOUT (a run; default 300).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:-tui-demo-captures}" && cd "${1:-tui-demo-captures}" && pwd)"
workbench="${WORKBENCH:-$here/.venv/bin/workbench}"
sizes="${SIZES:-140x40 80x24}"
step_timeout="${STEP_TIMEOUT:-60}"
run_timeout="${RUN_TIMEOUT:-300}"
socket="wb-demo-$$"
work="$(mktemp -d)"
session=""
failures=0

command -v tmux >/dev/null || { echo "tui_demo_check: tmux is not installed" >&2; exit 2; }
[ -x "$workbench" ] || { echo "tui_demo_check: $workbench not found (make venv, or set WORKBENCH)" >&2; exit 2; }

tm() { tmux -L "$socket" "$@"; }

cleanup() {
    tm kill-server 2>/dev/null || true
    # The runs keep going without the app (by design): stop what is still live, then tidy up.
    for project in "$work"/*/; do
        [ -d "$project/.workbench" ] || continue
        for run in "$project"/.workbench/runs/*/; do
            [ -d "$run" ] || continue
            (cd "$project" && "$workbench" stop --kill "$(basename "$run")" >/dev/null 2>&1) || true
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

capture() {  # capture NAME: the pane's text now, into $out/$size/NAME.txt
    tm capture-pane -p -t "$session" >"$out/$size/$1.txt" 2>/dev/null || true
}

fail() {
    echo "FAIL [$size] $1" >&2
    failures=$((failures + 1))
    return 1
}

expect() {  # expect NAME TIMEOUT TEXT...: wait until every TEXT is on screen, capturing as NAME
    local name="$1" timeout="$2"
    shift 2
    local deadline=$((SECONDS + timeout)) missing
    while :; do
        capture "$name"
        missing=""
        for text in "$@"; do
            grep -qF -- "$text" "$out/$size/$name.txt" || missing="$text"
        done
        [ -z "$missing" ] && { echo "  ok  $name"; return 0; }
        if [ $SECONDS -ge $deadline ]; then
            fail "$name: '$missing' not on screen after ${timeout}s (see $out/$size/$name.txt)"
            return 1
        fi
        sleep 0.5
    done
}

press() {  # press KEY...: one key at a time, as a person types
    for key in "$@"; do
        tm send-keys -t "$session" "$key"
        sleep 0.4
    done
}

open_form() {  # open_form PREFIX TASK: the launch form of TASK (the task list's highlight moves down until it is)
    local prefix="$1" task="$2" tries=0
    press 1
    while :; do
        press Enter
        expect "$prefix-form" "$step_timeout" "New run:" "ready" || return 1
        grep -qF "New run: $task" "$out/$size/$prefix-form.txt" && return 0
        tries=$((tries + 1))
        [ $tries -lt 8 ] || { fail "$prefix: $task not found in the task list"; return 1; }
        press Escape Down
    done
}

open_sine_form() { open_form "$1" SineRegression; }

start_app() {  # start_app: the app in a new detached session, in $project
    tm new-session -d -s "$session" -x "$width" -y "$height" -c "$project" \
        "env TERM=xterm-256color COLORTERM=truecolor '$workbench'"
    tm set-option -t "$session" remain-on-exit on >/dev/null
}

quit_app() {  # quit_app NAME: q, then wait for the pane to end (capturing as NAME)
    press q
    local deadline=$((SECONDS + step_timeout))
    until [ "$(tm display-message -p -t "$session" '#{pane_dead}')" = "1" ]; do
        [ $SECONDS -lt $deadline ] || { capture "$1"; fail "$1: the app did not exit"; return 1; }
        sleep 0.5
    done
    capture "$1"
    echo "  ok  $1"
    tm kill-session -t "$session"
}

launch_sine() {  # SineRegression with epochs 1 (a short run) and lr $2, launched; $1 prefixes the captures
    local prefix="$1" lr="$2" tabs
    # The first field takes the focus when the form opens (epochs; a project with profiles
    # focuses the profile first): type there, and if epochs did not take it, cancel and Tab once.
    for tabs in 0 1; do
        open_sine_form "$prefix" || return 1
        [ "$tabs" = 1 ] && press Tab
        press C-u 1
        expect "$prefix-epochs" "$step_timeout" "ready" || return 1
        if grep -qE "epochs +1 " "$out/$size/$prefix-epochs.txt"; then
            press Tab C-u
            for ((i = 0; i < ${#lr}; i++)); do press "${lr:i:1}"; done
            expect "$prefix-lr" "$step_timeout" "ready" || return 1
            grep -qE "lr +$lr " "$out/$size/$prefix-lr.txt" || { fail "$prefix: lr did not take $lr"; return 1; }
            press C-l
            return 0
        fi
        press Escape
    done
    fail "$prefix: could not set epochs to 1 in the form (see $out/$size/$prefix-epochs.txt)"
    return 1
}

check_size() {
    local width="${size%x*}" height="${size#*x}" project="$work/quickstart-$size"
    mkdir -p "$out/$size"
    cp -r "$here/sample_projects/quickstart" "$project"
    printf '.workbench/\n__pycache__/\n' >"$project/.gitignore"
    git -C "$project" init -q
    git -C "$project" add -A
    git -C "$project" -c user.name=demo -c user.email=demo@example.com commit -qm "quickstart"
    session="demo-$size"
    start_app

    echo "[$size] $project"
    expect 01-start "$step_timeout" "Workbench" "Tasks" "Runs" "no runs yet" || return 0
    # 1: launch a run from the form, watch it run to the end in the table.
    launch_sine 02-launch 0.003 || return 0
    expect 03-watch "$step_timeout" "SineRegression" "· 1 run ·" || return 0
    expect 04-finished "$run_timeout" "completed" "0 running" || return 0
    if [ "$width" -ge 100 ]; then
        expect 05-log "$step_timeout" "output.log ·" "attempt 1" || return 0
    fi
    # 2: its run screen: overview, metrics, output; back.
    press 2 Enter
    expect 06-run-overview "$step_timeout" "Overview" "status" "completed" "history" || return 0
    press 3
    expect 07-run-metrics "$step_timeout" "train/loss" "last" || return 0
    press 4
    expect 08-run-output "$step_timeout" "attempt 1" || return 0
    press Escape
    expect 09-back "$step_timeout" "Tasks" "· 1 run ·" || return 0
    # 3: a second run, then both marked and compared.
    launch_sine 10-second 0.01 || return 0
    expect 11-second-finished "$run_timeout" "· 2 runs ·" "0 running" || return 0
    press 2 Home space space
    expect 12-marked "$step_timeout" "2 marked" "overlay" || return 0
    press c
    expect 13-compare "$step_timeout" "Compare 2 runs" "val/loss best" "train/loss best" "code:" || return 0
    if [ "$height" -ge 40 ]; then  # 140x40: the answer without scrolling, config included
        # (no "at step N" rows: both runs ended at the same step, where they repeat "last")
        expect 14-compare-fold "$step_timeout" "train/loss last" "config.lr" "0.003 ◆" || return 0
    fi
    press Escape
    expect 15-back "$step_timeout" "2 marked" || return 0
    # 4: quit (nothing is left running: the pane ends), then open the app again: the marks
    # and the overlay of the marked runs are still there.
    quit_app 16-quit || return 0
    start_app
    expect 17-restart "$step_timeout" "2 marked" "overlay" "val/loss" "0 running" || return 0
    # 5: the spiral classifier logs its decision boundary each epoch: its run screen's Images
    # tab shows the last one (half blocks in a terminal without Kitty or Sixel graphics).
    open_form 18-spiral SpiralClassification || return 0
    press C-l
    expect 19-spiral-finished "$run_timeout" "· 3 runs ·" "0 running" || return 0
    press 2 Home Enter
    expect 20-spiral-run "$step_timeout" "SpiralClassification" "Overview" "completed" || return 0
    press 8
    expect 21-spiral-images "$step_timeout" "boundary" "step" "▀▀▀▀" || return 0
    press Escape
    expect 22-back "$step_timeout" "· 3 runs ·" || return 0
    quit_app 23-quit || return 0
}

for size in $sizes; do
    check_size || true
done
echo "captures: $out"
if [ $failures -gt 0 ]; then
    echo "tui_demo_check: $failures step(s) failed" >&2
    exit 1
fi
echo "tui_demo_check: every step showed what it should"
