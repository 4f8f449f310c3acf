//! The two hash functions the hashing schedulers use, bit-exact with the
//! kernel: `hash_32` from `include/linux/hash.h` (dh, sh, lblc, lblcr) and
//! `hsiphash` from `lib/siphash.c` as built on 64-bit kernels (mh).
//!
//! Deviation: none on 64-bit. A 32-bit kernel's `hsiphash` is real
//! HalfSipHash-1-3 and gives other numbers; we only reproduce the 64-bit one.

use siphasher::sip::SipHasher13;
use std::hash::Hasher;

/// `GOLDEN_RATIO_32` of `include/linux/hash.h`.
pub const GOLDEN_RATIO_32: u32 = 0x61C8_8647;

/// Linux `hash_32(val, bits)`: multiply by the golden ratio and keep the
/// top `bits` bits. `bits` must be in 1..=32.
pub fn hash_32(val: u32, bits: u32) -> u32 {
    debug_assert!((1..=32).contains(&bits));
    val.wrapping_mul(GOLDEN_RATIO_32) >> (32 - bits)
}

/// A 128-bit `hsiphash_key_t` as a 64-bit kernel holds it: two words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsipKey(pub u64, pub u64);

/// Linux `hsiphash(&v, sizeof(u32), key)` on a 64-bit little-endian kernel:
/// SipHash-1-3 of the four bytes of `v` in memory order, truncated to 32
/// bits.
pub fn hsiphash_u32(v: u32, key: HsipKey) -> u32 {
    let mut h = SipHasher13::new_with_keys(key.0, key.1);
    h.write(&v.to_le_bytes());
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_32_keeps_the_top_bits_of_the_golden_ratio_product() {
        assert_eq!(hash_32(0, 8), 0);
        assert_eq!(hash_32(1, 8), 0x61);
        assert_eq!(hash_32(1, 10), 0x61C8_8647 >> 22);
        // 198.18.0.10: the wrapped product's top bits, via 64-bit math.
        let v = 0xC612_000Au32;
        let p = (v as u64 * 0x61C8_8647u64) as u32;
        assert_eq!(hash_32(v, 8), p >> 24);
        assert_eq!(hash_32(v, 32), p);
    }

    /// A straight transcription of the kernel's SipHash-1-3 for one 4-byte
    /// block, to pin the `siphasher` crate to the kernel's construction.
    fn kernel_hsiphash_4(v: u32, k0: u64, k1: u64) -> u32 {
        let mut v0 = 0x736f_6d65_7073_6575u64 ^ k0;
        let mut v1 = 0x646f_7261_6e64_6f6du64 ^ k1;
        let mut v2 = 0x6c79_6765_6e65_7261u64 ^ k0;
        let mut v3 = 0x7465_6462_7974_6573u64 ^ k1;
        let b = (4u64 << 56) | v as u64;
        let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
            *v0 = v0.wrapping_add(*v1);
            *v1 = v1.rotate_left(13);
            *v1 ^= *v0;
            *v0 = v0.rotate_left(32);
            *v2 = v2.wrapping_add(*v3);
            *v3 = v3.rotate_left(16);
            *v3 ^= *v2;
            *v0 = v0.wrapping_add(*v3);
            *v3 = v3.rotate_left(21);
            *v3 ^= *v0;
            *v2 = v2.wrapping_add(*v1);
            *v1 = v1.rotate_left(17);
            *v1 ^= *v2;
            *v2 = v2.rotate_left(32);
        };
        v3 ^= b;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= b;
        v2 ^= 0xff;
        for _ in 0..3 {
            round(&mut v0, &mut v1, &mut v2, &mut v3);
        }
        (v0 ^ v1 ^ v2 ^ v3) as u32
    }

    #[test]
    fn hsiphash_is_the_kernels_siphash_1_3() {
        let k = HsipKey(2_654_435_761, 2_654_435_761);
        for v in [0u32, 1, 80, 0xC613_0102, 0xC613_0152, u32::MAX] {
            assert_eq!(
                hsiphash_u32(v, k),
                kernel_hsiphash_4(v, k.0, k.1),
                "v={v:#x}"
            );
        }
        let k2 = HsipKey(2_654_446_892, 2_654_446_892);
        assert_eq!(hsiphash_u32(7, k2), kernel_hsiphash_4(7, k2.0, k2.1));
        assert_ne!(hsiphash_u32(7, k), hsiphash_u32(7, k2));
    }
}
