//! Two CPU-bound kernels, plain Rust with no dependencies, so that the very
//! same source runs as a wasm task and natively in the benchmarks.

/// SHA-256 (FIPS 180-4) of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut state: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    let bit_length = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bit_length.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let choice = (e & f) ^ (!e & g);
            let t1 = h
                .wrapping_add(s1)
                .wrapping_add(choice)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let majority = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(majority);
            h = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (slot, value) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
            *slot = slot.wrapping_add(value);
        }
    }
    let mut digest = [0u8; 32];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// A deterministic buffer of `len` bytes to hash.
pub fn buffer(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8)
        .collect()
}

/// The energy of the benchmarks game's five-body system after `steps`
/// steps of 0.01.
pub fn nbody(steps: u32) -> f64 {
    const PI: f64 = std::f64::consts::PI;
    const SOLAR_MASS: f64 = 4.0 * PI * PI;
    const DAYS: f64 = 365.24;
    let mut bodies: [[f64; 7]; 5] = [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, SOLAR_MASS],
        [
            4.841_431_442_464_72e0,
            -1.160_320_044_027_428_4e0,
            -1.036_220_444_711_231_1e-1,
            1.660_076_642_744_037e-3 * DAYS,
            7.699_011_184_197_404e-3 * DAYS,
            -6.904_600_169_720_63e-5 * DAYS,
            9.547_919_384_243_266e-4 * SOLAR_MASS,
        ],
        [
            8.343_366_718_244_58e0,
            4.124_798_564_124_305e0,
            -4.035_234_171_143_214e-1,
            -2.767_425_107_268_624e-3 * DAYS,
            4.998_528_012_349_172e-3 * DAYS,
            2.304_172_975_737_639_3e-5 * DAYS,
            2.858_859_806_661_308e-4 * SOLAR_MASS,
        ],
        [
            1.289_436_956_213_913_1e1,
            -1.511_115_140_169_863_1e1,
            -2.233_075_788_926_557_3e-1,
            2.964_601_375_647_616e-3 * DAYS,
            2.378_471_739_594_809_5e-3 * DAYS,
            -2.965_895_685_402_375_6e-5 * DAYS,
            4.366_244_043_351_563e-5 * SOLAR_MASS,
        ],
        [
            1.537_969_711_485_091_1e1,
            -2.591_931_460_998_796_4e1,
            1.792_587_729_503_711_8e-1,
            2.680_677_724_903_893_2e-3 * DAYS,
            1.628_241_700_382_423e-3 * DAYS,
            -9.515_922_545_197_159e-5 * DAYS,
            5.151_389_020_466_114_5e-5 * SOLAR_MASS,
        ],
    ];
    // Offset the sun's momentum so the system's is zero.
    let mut momentum = [0.0f64; 3];
    for body in &bodies {
        for axis in 0..3 {
            momentum[axis] += body[3 + axis] * body[6];
        }
    }
    for axis in 0..3 {
        bodies[0][3 + axis] = -momentum[axis] / SOLAR_MASS;
    }
    for _ in 0..steps {
        for i in 0..5 {
            for j in i + 1..5 {
                let d = [
                    bodies[i][0] - bodies[j][0],
                    bodies[i][1] - bodies[j][1],
                    bodies[i][2] - bodies[j][2],
                ];
                let distance2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
                let magnitude = 0.01 / (distance2 * distance2.sqrt());
                let (mass_i, mass_j) = (bodies[i][6], bodies[j][6]);
                for axis in 0..3 {
                    bodies[i][3 + axis] -= d[axis] * mass_j * magnitude;
                    bodies[j][3 + axis] += d[axis] * mass_i * magnitude;
                }
            }
        }
        for body in &mut bodies {
            for axis in 0..3 {
                body[axis] += 0.01 * body[3 + axis];
            }
        }
    }
    let mut energy = 0.0;
    for i in 0..5 {
        let b = &bodies[i];
        energy += 0.5 * b[6] * (b[3] * b[3] + b[4] * b[4] + b[5] * b[5]);
        for other in &bodies[i + 1..] {
            let d = [b[0] - other[0], b[1] - other[1], b[2] - other[2]];
            energy -= b[6] * other[6] / (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        }
    }
    energy
}
