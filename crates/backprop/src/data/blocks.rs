//! Turning a matrix stored as one block per feature into rows, in place, so that
//! encoding a table never holds the table and a second matrix at once (issue 19).

/// Rearranges `a`, which holds `rows` rows as one row-major block per feature (the
/// block of a feature `w` wide is `rows x w`, blocks in feature order, `widths`), into
/// the row-major `rows x sum(widths)` matrix, in place: by following the cycles of the
/// permutation, with one bit per cell to mark those already placed. A copy would need
/// a second matrix at once (BENCHMARKS.md, "Memory").
pub(crate) fn blocks_to_rows(a: &mut [f32], rows: usize, widths: &[usize]) {
    let width: usize = widths.iter().sum();
    assert_eq!(a.len(), rows * width, "blocks_to_rows: {rows} x {width}");
    if rows <= 1 || widths.len() <= 1 {
        return; // one block, or one row: already row-major
    }
    // For every column of the result: its feature's first column and width.
    let mut block = Vec::with_capacity(width);
    let mut first = 0;
    for &w in widths {
        block.extend(std::iter::repeat_n((first, w), w));
        first += w;
    }
    let dest = |p: usize| {
        let (first, w) = block[p / rows];
        let local = p - first * rows;
        local / w * width + first + local % w
    };
    let mut placed = vec![0u64; a.len().div_ceil(64)];
    for start in 0..a.len() {
        if (placed[start / 64] >> (start % 64)) & 1 == 1 {
            continue;
        }
        // Carry the value at `start` to its place, picking up the one there, until
        // the cycle comes back to `start`.
        let (mut p, mut carried) = (start, a[start]);
        loop {
            let q = dest(p);
            placed[q / 64] |= 1 << (q % 64);
            std::mem::swap(&mut a[q], &mut carried);
            if q == start {
                break;
            }
            p = q;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feature blocks become rows in place, for every mix of widths and row counts.
    #[test]
    fn blocks_become_rows_in_place() {
        for widths in [
            vec![1],
            vec![1, 1],
            vec![3, 1, 2],
            vec![2, 5],
            vec![1, 4, 1, 1],
        ] {
            let width: usize = widths.iter().sum();
            for rows in [0, 1, 2, 7, 64, 129] {
                // Cell (r, c) of the result holds r * 1000 + c.
                let mut a = Vec::with_capacity(rows * width);
                let mut first = 0;
                for &w in &widths {
                    for r in 0..rows {
                        a.extend((first..first + w).map(|c| (r * 1000 + c) as f32));
                    }
                    first += w;
                }
                blocks_to_rows(&mut a, rows, &widths);
                let want: Vec<f32> = (0..rows)
                    .flat_map(|r| (0..width).map(move |c| (r * 1000 + c) as f32))
                    .collect();
                assert_eq!(a, want, "{widths:?} {rows}");
            }
        }
    }
}
