//! Fixed colours: one per (operation f, outcome) and one per fault kind,
//! looked up by name, so that a colour means the same thing in every plot
//! of every run (a table indexed by order would recolour `kill` as soon as
//! a run also had a `partition`). Names outside the tables get a colour
//! from a hash of the name: still the same in every run.

/// A colour as red, green, blue.
pub type Rgb = (u8, u8, u8);

/// Fault kinds the driver's nemesis knows, each with its own colour.
/// Hues are spread so that neighbours on a plot tell apart; `transfer`
/// and `leader-transfer` are the same fault under two names.
pub const FAULT_COLOURS: [(&str, Rgb); 16] = [
    ("partition", (0xe4, 0x1a, 0x1c)),
    ("kill", (0x37, 0x7e, 0xb8)),
    ("pause", (0xff, 0x7f, 0x00)),
    ("slow", (0x98, 0x4e, 0xa3)),
    ("transfer", (0xa6, 0x56, 0x28)),
    ("leader-transfer", (0xa6, 0x56, 0x28)),
    ("membership", (0x4d, 0xaf, 0x4a)),
    ("vote-crash", (0xf7, 0x81, 0xbf)),
    ("lagging-leader", (0x1b, 0x9e, 0x77)),
    ("deposed-leader", (0x66, 0x66, 0x66)),
    ("leader-churn", (0xb8, 0x9b, 0x00)),
    ("crash-point", (0x00, 0x6d, 0x8f)),
    ("messages", (0x7a, 0x00, 0x3c)),
    ("power-cut", (0x2b, 0x2b, 0xa0)),
    ("clock", (0x00, 0xbf, 0xc4)),
    ("nemesis", (0x99, 0x33, 0x00)),
];

/// Operation colours by f and outcome: one hue family per f, dark for
/// ok, a warm shade for fail, a pale one for info, so that outcomes of
/// one f read as related and fail/info still stand out from the ok cloud.
pub const OP_COLOURS: [(&str, &str, Rgb); 12] = [
    ("read", "ok", (0x1f, 0x77, 0xb4)),
    ("read", "fail", (0xd6, 0x27, 0x28)),
    ("read", "info", (0x9e, 0xc9, 0xe2)),
    ("write", "ok", (0x2c, 0xa0, 0x2c)),
    ("write", "fail", (0xff, 0x7f, 0x0e)),
    ("write", "info", (0xa1, 0xd9, 0x9b)),
    ("cas", "ok", (0x94, 0x67, 0xbd)),
    ("cas", "fail", (0xe3, 0x77, 0xc2)),
    ("cas", "info", (0xc5, 0xb0, 0xd5)),
    ("append", "ok", (0x8c, 0x56, 0x4b)),
    ("append", "fail", (0xbc, 0xbd, 0x22)),
    ("append", "info", (0xc4, 0x9c, 0x94)),
];

/// The colour of fault kind `kind`.
pub fn fault_colour(kind: &str) -> Rgb {
    FAULT_COLOURS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| hashed(kind))
}

/// The colour of operations `f` that ended `outcome` (`pending` is drawn
/// as `info`: neither is known to have happened or not).
pub fn op_colour(f: &str, outcome: &str) -> Rgb {
    let outcome = if outcome == "pending" {
        "info"
    } else {
        outcome
    };
    OP_COLOURS
        .iter()
        .find(|(g, o, _)| *g == f && *o == outcome)
        .map(|(_, _, c)| *c)
        .unwrap_or_else(|| hashed(&format!("{f} {outcome}")))
}

/// `#rrggbb` for CSS and SVG.
pub fn hex((r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A mid-dark colour from a hash of `name` (FNV-1a: stable across runs,
/// builds and platforms, unlike the standard library's hasher).
fn hashed(name: &str) -> Rgb {
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    // Keep each channel in 40..200: visible on white, never black.
    let ch = |shift: u32| 40 + ((h >> shift) & 0xff) as u8 % 160;
    (ch(0), ch(8), ch(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: Rgb, b: Rgb) -> i32 {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).abs();
        d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)
    }

    #[test]
    fn every_fault_kind_has_a_colour_far_from_every_other_kind() {
        for (i, (a, ca)) in FAULT_COLOURS.iter().enumerate() {
            for (b, cb) in &FAULT_COLOURS[i + 1..] {
                let aliases = [*a, *b] == ["transfer", "leader-transfer"];
                assert!(
                    aliases || distance(*ca, *cb) >= 60,
                    "{a} and {b} look alike: {ca:?} {cb:?}"
                );
            }
        }
    }

    #[test]
    fn every_f_and_outcome_has_a_colour_far_from_every_other() {
        for (i, (f, o, c)) in OP_COLOURS.iter().enumerate() {
            for (g, p, d) in &OP_COLOURS[i + 1..] {
                assert!(
                    distance(*c, *d) >= 60,
                    "{f} {o} and {g} {p} look alike: {c:?} {d:?}"
                );
            }
        }
    }

    #[test]
    fn a_colour_depends_on_the_name_only_not_on_what_else_is_drawn() {
        assert_eq!(fault_colour("kill"), (0x37, 0x7e, 0xb8));
        assert_eq!(op_colour("read", "pending"), op_colour("read", "info"));
        // Unknown names: the same colour on every call.
        assert_eq!(fault_colour("disk-full"), fault_colour("disk-full"));
        assert_ne!(fault_colour("disk-full"), fault_colour("disk-slow"));
        assert_eq!(hex((0x0a, 0xff, 0x00)), "#0aff00");
    }
}
