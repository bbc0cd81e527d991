//! What the CPU can do for the network's numbers: whether it has bfloat16 arithmetic
//! (AMX-BF16 tiles, or AVX512-BF16 dot products), which makes the bf16 variant's
//! convolutions several times faster than float32. Read from /proc/cpuinfo's flags,
//! which list only what the kernel also enables.

use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuFlags {
    pub amx_bf16: bool,
    pub avx512_bf16: bool,
}

impl CpuFlags {
    /// The flags of the first processor in a /proc/cpuinfo text.
    pub fn parse(cpuinfo: &str) -> Self {
        let flags = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .and_then(|l| l.split_once(':'))
            .map_or("", |(_, f)| f);
        let has = |name: &str| flags.split_whitespace().any(|f| f == name);
        Self {
            amx_bf16: has("amx_bf16") && has("amx_tile"),
            avx512_bf16: has("avx512_bf16"),
        }
    }

    /// This machine's (read once).
    pub fn here() -> Self {
        static FLAGS: OnceLock<CpuFlags> = OnceLock::new();
        *FLAGS.get_or_init(|| {
            std::fs::read_to_string("/proc/cpuinfo")
                .map(|s| Self::parse(&s))
                .unwrap_or_default()
        })
    }

    /// The bfloat16 instructions it has, by name; None without any.
    pub fn bf16(&self) -> Option<&'static str> {
        if self.amx_bf16 {
            Some("AMX-BF16")
        } else if self.avx512_bf16 {
            Some("AVX512-BF16")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_instructions_are_read_from_the_flags() {
        let spr =
            "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8\n";
        assert_eq!(CpuFlags::parse(spr).bf16(), Some("AMX-BF16"));
        let cooper = "flags\t: fpu avx2 avx512f avx512_bf16\n";
        assert_eq!(CpuFlags::parse(cooper).bf16(), Some("AVX512-BF16"));
        let zen3 = "flags\t: fpu avx2 fma\n";
        assert_eq!(CpuFlags::parse(zen3).bf16(), None);
        // A name inside another flag is not that flag; no flags line, no flags.
        assert_eq!(
            CpuFlags::parse("flags: avx512_bf16x amx_bf16\n").bf16(),
            None
        );
        assert_eq!(CpuFlags::parse("").bf16(), None);
    }
}
