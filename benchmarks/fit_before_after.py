"""End-to-end `nnrecipe fit` wall time of two source trees, alternated in one run (a before/after
check of a change to the driver): BEFORE=path/to/old/src AFTER=path/to/new/src ROUNDS=3
python benchmarks/fit_before_after.py [fit arguments, default --data digits --epochs 5]."""
import os
import statistics
import subprocess
import sys
import tempfile
import time

cases = {"before": os.environ["BEFORE"], "after": os.environ.get("AFTER", "src")}
args = sys.argv[1:] or ["--data", "digits", "--epochs", "5"]
times = {k: [] for k in cases}
for r in range(int(os.environ.get("ROUNDS", "3"))):
    for name, path in cases.items():
        out = tempfile.mkdtemp() + "/run"
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "nnrecipe", "fit", *args, "--quiet", "--out", out],
                       env={**os.environ, "PYTHONPATH": path}, check=True, capture_output=True, cwd=tempfile.gettempdir())
        times[name].append(time.perf_counter() - t)
for k, v in times.items():
    print(k, "median %.2f s" % statistics.median(v), " ".join("%.2f" % x for x in v))
print("after/before (medians): %.3f" % (statistics.median(times["after"]) / statistics.median(times["before"])))
