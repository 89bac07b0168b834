//! A dense `f32` matrix (row-major, batch x features) and strided views of one, the
//! operands of the products that forward and backward propagation are made of (those
//! products are `kernels::gemm`).

use serde::{Deserialize, Serialize};

/// A dense row-major `f32` matrix: `rows` observations x `cols` features.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(from = "Stored")]
pub struct Matrix {
    rows: usize,
    cols: usize,
    /// The elements start at `data[start]`. Matrices sized by [`Matrix::zeros`] and
    /// [`Matrix::resize`] (every buffer of a training step) keep up to 15 floats in
    /// front so that the elements start on a 64-byte boundary: no 64-byte (AVX-512) load
    /// or store of a row of 16 or 64 then straddles two cache lines. (A clone keeps the
    /// offset in its own allocation, so it may not be aligned; it is still correct.)
    data: Vec<f32>,
    start: usize,
}

/// Floats kept in front of a matrix's elements at most (64 bytes less one float).
const ALIGN_FLOATS: usize = 15;

/// A matrix as serialised: its elements only.
#[derive(Deserialize)]
struct Stored {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

/// [`Stored`], borrowed, to serialise without a copy.
#[derive(Serialize)]
struct StoredRef<'a> {
    rows: usize,
    cols: usize,
    data: &'a [f32],
}

impl Serialize for Matrix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredRef {
            rows: self.rows,
            cols: self.cols,
            data: self.as_slice(),
        }
        .serialize(serializer)
    }
}

impl From<Stored> for Matrix {
    fn from(s: Stored) -> Self {
        Matrix {
            rows: s.rows,
            cols: s.cols,
            data: s.data,
            start: 0,
        }
    }
}

impl PartialEq for Matrix {
    fn eq(&self, other: &Self) -> bool {
        self.rows == other.rows && self.cols == other.cols && self.as_slice() == other.as_slice()
    }
}

impl Matrix {
    /// A `rows x cols` matrix of zeros.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        let mut m = Matrix::default();
        m.resize(rows, cols);
        m.as_mut_slice().fill(0.0);
        m
    }

    /// Wraps row-major `data`; `None` unless `data.len() == rows * cols`.
    pub fn from_vec(rows: usize, cols: usize, data: Vec<f32>) -> Option<Self> {
        (data.len() == rows * cols).then_some(Matrix {
            rows,
            cols,
            data,
            start: 0,
        })
    }

    /// Builds a matrix from equal-length rows; `None` if the rows differ in length.
    pub fn from_rows<R: AsRef<[f32]>>(rows: &[R]) -> Option<Self> {
        let cols = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len() * cols);
        for r in rows {
            if r.as_ref().len() != cols {
                return None;
            }
            data.extend_from_slice(r.as_ref());
        }
        Matrix::from_vec(rows.len(), cols, data)
    }

    /// Number of rows (observations).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The row-major data.
    pub fn as_slice(&self) -> &[f32] {
        &self.data[self.start..self.start + self.rows * self.cols]
    }

    /// The row-major data, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        let len = self.rows * self.cols;
        &mut self.data[self.start..self.start + len]
    }

    /// Consumes the matrix and returns its row-major data.
    pub fn into_vec(self) -> Vec<f32> {
        let (start, len) = (self.start, self.rows * self.cols);
        let mut data = self.data;
        data.truncate(start + len);
        data.drain(..start);
        data
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.as_slice()[i * self.cols..(i + 1) * self.cols]
    }

    /// Row `i`, mutably.
    pub fn row_mut(&mut self, i: usize) -> &mut [f32] {
        let cols = self.cols;
        &mut self.as_mut_slice()[i * cols..(i + 1) * cols]
    }

    /// Element `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f32 {
        self.as_slice()[i * self.cols + j]
    }

    /// Resizes to `rows x cols` keeping the allocation when it is large enough, with
    /// the elements starting on a 64-byte boundary. Contents are unspecified afterwards.
    pub fn resize(&mut self, rows: usize, cols: usize) {
        self.rows = rows;
        self.cols = cols;
        self.data.resize(rows * cols + ALIGN_FLOATS, 0.0);
        // Floats from the allocation's start to the next 64-byte boundary.
        let misaligned = self.data.as_ptr() as usize % 64 / std::mem::size_of::<f32>();
        self.start = (16 - misaligned) % 16;
    }

    /// Copies the rows listed in `idx` of `src` into `self` (resized to fit).
    pub fn gather_rows(&mut self, src: &Matrix, idx: &[usize]) {
        self.resize(idx.len(), src.cols);
        let c = src.cols;
        let from = src.as_slice();
        for (dst, &i) in self.as_mut_slice().chunks_exact_mut(c.max(1)).zip(idx) {
            dst.copy_from_slice(&from[i * c..(i + 1) * c]);
        }
    }

    /// A new matrix holding the rows listed in `idx`.
    pub fn select_rows(&self, idx: &[usize]) -> Matrix {
        let mut m = Matrix::zeros(0, self.cols);
        m.gather_rows(self, idx);
        m
    }

    /// Column `j` copied out.
    pub fn column(&self, j: usize) -> Vec<f32> {
        (0..self.rows).map(|i| self.get(i, j)).collect()
    }
}

/// A read-only strided view of a matrix stored in a slice.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// The backing data.
    pub data: &'a [f32],
    /// Rows of the viewed matrix.
    pub rows: usize,
    /// Columns of the viewed matrix.
    pub cols: usize,
    /// Distance between consecutive rows.
    pub row_stride: isize,
    /// Distance between consecutive columns.
    pub col_stride: isize,
}

impl<'a> View<'a> {
    /// A row-major `rows x cols` view.
    pub fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        assert_eq!(
            data.len(),
            rows * cols,
            "View::new: data length vs {rows}x{cols}"
        );
        View {
            data,
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    /// The transpose, without copying.
    pub fn t(self) -> Self {
        View {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// Element `(i, j)` (non-negative strides).
    pub(crate) fn at(self, i: usize, j: usize) -> f32 {
        self.data[i * self.row_stride as usize + j * self.col_stride as usize]
    }

    /// Row `i` as a slice (contiguous rows: `col_stride == 1`).
    pub(crate) fn row(self, i: usize) -> &'a [f32] {
        debug_assert_eq!(self.col_stride, 1);
        &self.data[i * self.row_stride as usize..][..self.cols]
    }

    /// Columns `start..start+len` of this view.
    pub(crate) fn cols_slice(self, start: usize, len: usize) -> Self {
        let offset = start as isize * self.col_stride;
        View {
            data: &self.data[offset as usize..],
            cols: len,
            ..self
        }
    }

    /// Rows `start..start+len` of this view.
    pub(crate) fn rows_slice(self, start: usize, len: usize) -> Self {
        let offset = start as isize * self.row_stride;
        View {
            data: &self.data[offset as usize..],
            rows: len,
            ..self
        }
    }
}

impl Matrix {
    /// A row-major view of the whole matrix.
    pub fn view(&self) -> View<'_> {
        View::new(self.as_slice(), self.rows, self.cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sized matrices start on a 64-byte boundary whatever the allocation, and the
    /// floats kept in front of them show nowhere: not in the slice, rows, equality,
    /// `into_vec` or the serialised form.
    #[test]
    fn sized_matrices_are_aligned_and_padding_is_invisible() {
        let mut m = Matrix::default();
        for (rows, cols) in [(3, 5), (512, 64), (1, 1), (0, 7), (100, 3)] {
            m.resize(rows, cols);
            assert_eq!(m.as_slice().as_ptr() as usize % 64, 0, "{rows}x{cols}");
            assert_eq!(m.as_slice().len(), rows * cols);
            let z = Matrix::zeros(rows, cols);
            assert_eq!(
                z.as_slice().as_ptr() as usize % 64,
                0,
                "zeros {rows}x{cols}"
            );
            assert!(z.as_slice().iter().all(|&v| v == 0.0));
        }
        m.resize(3, 4);
        for (i, v) in m.as_mut_slice().iter_mut().enumerate() {
            *v = i as f32;
        }
        let plain = Matrix::from_vec(3, 4, (0..12).map(|i| i as f32).collect()).unwrap();
        assert_eq!(m, plain);
        assert_eq!(m.row(2), &[8.0, 9.0, 10.0, 11.0]);
        assert_eq!(m.get(1, 3), 7.0);
        assert_eq!(m.column(1), vec![1.0, 5.0, 9.0]);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, serde_json::to_string(&plain).unwrap());
        assert_eq!(
            json,
            r#"{"rows":3,"cols":4,"data":[0.0,1.0,2.0,3.0,4.0,5.0,6.0,7.0,8.0,9.0,10.0,11.0]}"#
        );
        assert_eq!(serde_json::from_str::<Matrix>(&json).unwrap(), m);
        assert_eq!(m.clone().into_vec(), plain.clone().into_vec());
        assert_eq!(
            m.select_rows(&[2, 0]).into_vec(),
            vec![8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0]
        );
    }
}
