//! Similarity kernels shared by the in-memory indexes (`crate::gallery`, `crate::search`): dot
//! products of a query with packed rows, in f32 and in int8, using AVX2 where the CPU has it, and the
//! int8 quantisation whose error bound lets an index score int8 first and stay exact.

/// Symmetric per-vector int8 quantisation: v ≈ q × scale.
pub fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    (v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

/// out[i] = ⟨query, row i⟩ for the rows packed in `rows`.
pub fn dots(query: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if dim.is_multiple_of(8)
            && std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); slices bound every access.
            unsafe { dots_avx2(query, rows, dim, out) };
            return;
        }
    }
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = row.iter().zip(query).map(|(a, b)| a * b).sum();
    }
}

/// out[i] = Σ query[j] × rows[i][j] in integers (as f32), for the int8 rows packed in `rows`.
pub fn dots_i8(query: &[i16], rows: &[i8], dim: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if dim.is_multiple_of(16) && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked above); slices bound every access.
            unsafe { dots_i8_avx2(query, rows, dim, out) };
            return;
        }
    }
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = row.iter().zip(query).map(|(&a, &b)| a as i32 * b as i32).sum::<i32>() as f32;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dots_i8_avx2(query: &[i16], rows: &[i8], dim: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        let (mut a0, mut a1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        let (r, q) = (row.as_ptr(), query.as_ptr());
        let mut i = 0;
        while i + 32 <= dim {
            let r0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(r.add(i) as *const __m128i));
            let r1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(r.add(i + 16) as *const __m128i));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(r0, _mm256_loadu_si256(q.add(i) as *const __m256i)));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(r1, _mm256_loadu_si256(q.add(i + 16) as *const __m256i)));
            i += 32;
        }
        while i + 16 <= dim {
            let r0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(r.add(i) as *const __m128i));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(r0, _mm256_loadu_si256(q.add(i) as *const __m256i)));
            i += 16;
        }
        let s = _mm256_add_epi32(a0, a1);
        let s4 = _mm_add_epi32(_mm256_extracti128_si256(s, 1), _mm256_castsi256_si128(s));
        let s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0b01_00_11_10));
        let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0b10_11_00_01));
        *o = _mm_cvtsi128_si32(s1) as f32;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dots_avx2(query: &[f32], rows: &[f32], dim: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        let (mut a0, mut a1, mut a2, mut a3) =
            (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
        let (r, q) = (row.as_ptr(), query.as_ptr());
        let mut i = 0;
        while i + 32 <= dim {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(i)), _mm256_loadu_ps(q.add(i)), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(i + 8)), _mm256_loadu_ps(q.add(i + 8)), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(i + 16)), _mm256_loadu_ps(q.add(i + 16)), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(i + 24)), _mm256_loadu_ps(q.add(i + 24)), a3);
            i += 32;
        }
        while i + 8 <= dim {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(r.add(i)), _mm256_loadu_ps(q.add(i)), a0);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        let hi = _mm256_extractf128_ps(s, 1);
        let lo = _mm256_castps256_ps128(s);
        let s4 = _mm_add_ps(hi, lo);
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
        *o = _mm_cvtss_f32(s1);
    }
}
