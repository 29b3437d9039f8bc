//! The quality factor: how healthy this unit is, as one whole percentage the
//! two units compare.
//!
//! quality = 100 × Σ(weight × ok) / Σ weight over the health inputs: each data
//! interface's link (weight 0–9999, default 100; HA links are not inputs:
//! heartbeats watch them), each disk the profile lists, and the TPM when the
//! profile has one. An input of weight 0 is watched and shown, never counted.
//! No weighted input at all is 100 % (nothing can be unhealthy).
//!
//! The Stormshield example: `out` 100 up, `in` 100 down, `dmz2` 75 up →
//! 100 × 175 / 275 = 63.6, shown as 63 (whole percent, rounded down: a unit
//! is never shown healthier than it is).

/// The most an input may weigh.
pub const MAX_WEIGHT: u16 = 9999;

/// The weight of a data interface when the configuration names none.
pub const DEFAULT_WEIGHT: u16 = 100;

/// What kind of health input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputKind {
    /// A data interface's link (from DPDK).
    Interface,
    /// A disk: present, and a write probe succeeds.
    Disk,
    /// The TPM: present and answering.
    Tpm,
}

/// One health input at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// Its name (`data0`, `nvme0`, `tpm`).
    pub name: String,
    /// What it is.
    pub kind: InputKind,
    /// How much it counts (0..=[`MAX_WEIGHT`]).
    pub weight: u16,
    /// Healthy now.
    pub ok: bool,
}

/// A quality factor in hundredths of a percent (0..=10000), so two units
/// compare it exactly; [`Quality::percent`] is what people see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quality(pub u16);

impl Quality {
    /// Every input healthy.
    pub const FULL: Quality = Quality(10_000);

    /// The whole percentage shown (rounded down).
    pub fn percent(self) -> u8 {
        u8::try_from(self.0 / 100).unwrap_or(100)
    }

    /// The quality of `inputs` (weights above [`MAX_WEIGHT`] count as it).
    pub fn of(inputs: &[Input]) -> Quality {
        let (mut ok, mut all) = (0u64, 0u64);
        for i in inputs {
            let w = u64::from(i.weight.min(MAX_WEIGHT));
            all += w;
            if i.ok {
                ok += w;
            }
        }
        if all == 0 {
            return Quality::FULL;
        }
        Quality(u16::try_from(ok * 10_000 / all).unwrap_or(10_000))
    }
}

impl std::fmt::Display for Quality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.percent())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, weight: u16, ok: bool) -> Input {
        Input {
            name: name.into(),
            kind: InputKind::Interface,
            weight,
            ok,
        }
    }

    #[test]
    fn the_stormshield_example_is_63() {
        let q = Quality::of(&[
            iface("out", 100, true),
            iface("in", 100, false),
            iface("dmz2", 75, true),
        ]);
        assert_eq!((q.percent(), q.to_string()), (63, "63%".to_string()));
        assert_eq!(q, Quality(6363));
    }

    #[test]
    fn nothing_weighted_is_full_and_weight_zero_never_counts() {
        assert_eq!(Quality::of(&[]), Quality::FULL);
        assert_eq!(Quality::of(&[iface("a", 0, false)]), Quality::FULL);
        assert_eq!(
            Quality::of(&[iface("a", 0, false), iface("b", 100, true)]),
            Quality::FULL
        );
    }

    #[test]
    fn disks_and_the_tpm_count_like_interfaces() {
        let mut inputs = vec![
            iface("data0", 100, true),
            Input {
                name: "nvme0".into(),
                kind: InputKind::Disk,
                weight: 100,
                ok: false,
            },
            Input {
                name: "tpm".into(),
                kind: InputKind::Tpm,
                weight: 200,
                ok: true,
            },
        ];
        assert_eq!(Quality::of(&inputs).percent(), 75);
        inputs[1].ok = true;
        assert_eq!(Quality::of(&inputs), Quality::FULL);
    }

    #[test]
    fn heavy_weights_do_not_overflow() {
        let inputs: Vec<_> = (0..1000)
            .map(|i| iface("x", u16::MAX, i % 3 != 0))
            .collect();
        assert_eq!(Quality::of(&inputs).percent(), 66);
    }
}
