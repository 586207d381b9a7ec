#!/usr/bin/env python3
"""Writes a realistic Sonix+ protocol of about SIZE megabytes, the same for the same seed.

Mostly INFO lines (motor moves, counts), some in Russian, some WARNING and ERROR lines
with levels and sources, scan start/end phrases, now and then a Python traceback. Used to
measure `protowatch replay` (see BENCHMARKS.md):

    python3 bench/make_protocol.py 200 > protocol.log   # SIZE in MB, then an optional seed
"""

import random
import sys


def main() -> None:
    size_mb = float(sys.argv[1]) if len(sys.argv) > 1 else 200
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    rng = random.Random(seed)
    limit = int(size_mb * 1_000_000)
    out = sys.stdout.buffer
    written = 0
    n = 0
    chunk = []
    while written < limit:
        n += 1
        t = f"2026-11-20 {(n // 3600) % 24:02}:{(n // 60) % 60:02}:{n % 60:02}.{n % 1000:03}"
        r = rng.randrange(10_000)
        if r < 8_000:
            line = (f"{t} | INFO | 3 | [motor] a{rng.randrange(1, 7)} moved to "
                    f"{rng.randrange(180)}.{rng.randrange(100):02} deg\n")
        elif r < 9_000:
            line = f"{t} | ИНФО | [детектор] счёт {rng.randrange(100_000)} имп/с, монитор {rng.randrange(1000)}\n"
        elif r < 9_400:
            line = f"{t} USER [script] sample {rng.randrange(12)} at {rng.randrange(2, 300)} K\n"
        elif r < 9_700:
            line = f"{t} | WARNING | 2 | [cryo] temperature {rng.randrange(10)}.{rng.randrange(10)} K above setpoint\n"
        elif r < 9_800:
            line = f"{t} | ПРЕДУПРЕЖДЕНИЕ | 1 | [насос] давление {rng.randrange(9)}e-{rng.randrange(3, 7)} мбар\n"
        elif r < 9_900:
            line = f"{t} | ERROR | {rng.randrange(1, 4)} | [detector] channel {rng.randrange(64)} not responding\n"
        elif r < 9_950:
            line = f"{t} | INFO | measurement started: scan {n}\n"
        elif r < 9_990:
            line = f"{t} | INFO | measurement finished: scan {n}, {rng.randrange(600)} s\n"
        else:
            line = (f"{t} ERROR [script] Traceback (most recent call last):\n"
                    f"  File \"scan.py\", line {rng.randrange(1, 400)}, in <module>\n"
                    f"    move(a3, {rng.randrange(90)}.5)\n"
                    f"  File \"motors.py\", line 88, in move\n"
                    f"    raise MotorError(f\"{{name}} stuck at {{pos}}\")\n"
                    f"motors.MotorError: a3 stuck at {rng.randrange(90)}.5\n")
        data = line.encode()
        chunk.append(data)
        written += len(data)
        if len(chunk) >= 4096:
            out.write(b"".join(chunk))
            chunk.clear()
    out.write(b"".join(chunk))


if __name__ == "__main__":
    main()
