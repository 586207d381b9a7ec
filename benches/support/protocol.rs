//! The seeded protocol generator the benchmarks share: mostly INFO lines, some in
//! Russian, warnings and errors with levels and sources, scan phrases, and now and then
//! a Python traceback — the mix of `bench/make_protocol.py`, so that a figure from a
//! criterion benchmark and one from a script describe the same kind of file.

/// A protocol of about `bytes` bytes, the same every time (seeded).
pub fn protocol(bytes: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::with_capacity(bytes + 256);
    let mut n = 0u64;
    while out.len() < bytes {
        n += 1;
        let t = format!(
            "2026-11-20 14:{:02}:{:02}.{:03}",
            (n / 60) % 60,
            n % 60,
            n % 1000
        );
        let line = match rng.u32(0..1000) {
            0..=799 => format!(
                "{t} | INFO | 3 | [motor] a{} moved to {}.{:02} deg\n",
                rng.u32(1..7),
                rng.u32(0..180),
                rng.u32(0..100)
            ),
            800..=899 => format!(
                "{t} | ИНФО | [детектор] счёт {} имп/с, монитор {}\n",
                rng.u32(0..100_000),
                rng.u32(0..1000)
            ),
            900..=939 => format!(
                "{t} USER [script] sample {} at {} K\n",
                rng.u32(0..12),
                rng.u32(2..300)
            ),
            940..=969 => format!(
                "{t} | WARNING | 2 | [cryo] temperature {} K above setpoint\n",
                rng.u32(0..10)
            ),
            970..=979 => format!(
                "{t} | ПРЕДУПРЕЖДЕНИЕ | 1 | [насос] давление {}e-{} мбар\n",
                rng.u32(0..9),
                rng.u32(3..7)
            ),
            980..=989 => format!(
                "{t} | ERROR | {} | [detector] channel {} not responding\n",
                rng.u32(1..4),
                rng.u32(0..64)
            ),
            990..=994 => format!("{t} | INFO | measurement started: scan {n}\n"),
            995..=998 => format!("{t} | INFO | measurement finished: scan {n}\n"),
            _ => format!(
                "{t} ERROR [script] Traceback (most recent call last):\n  File \"scan.py\", line {}, in <module>\n    move(a3, 12.5)\nMotorError: a3 stuck at {}.5\n",
                rng.u32(1..400),
                rng.u32(0..90)
            ),
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}
