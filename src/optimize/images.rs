//! A folder of images (PNG, JPEG) as a data set, with its labels in a CSV file (`filename,label`
//! rows, the label a class index) or a `.npy`. Each image is resized so it covers the model's
//! input (bilinear, shorter side first) and centre-cropped, taken as RGB or as grayscale for a
//! one-channel input, and handed on as raw NHWC (or N,H,W) values 0..255: the preprocessing
//! spec then applies exactly as to `.npy` data.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::DynamicImage;
use ndarray::{ArrayD, IxDyn};

use super::data::model_channel_axis;
use super::error::{OptimizeError, Result};

const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// Whether `labels` is a CSV file (by extension), the form that goes with an image folder.
pub fn is_csv(labels: &Path) -> bool {
    labels
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// The images of `dir` (in the CSV's row order when `labels_csv` is given, else every image
/// file sorted by name) as raw samples for `model_input`, and the CSV's labels.
pub fn read_folder(
    dir: &Path,
    labels_csv: Option<&Path>,
    model_input: &[usize],
) -> Result<(ArrayD<f32>, Option<Vec<i64>>)> {
    let sample = model_input.get(1..).unwrap_or(&[]);
    let (channels, h, w) = match (model_channel_axis(sample), sample) {
        (Some(0), [c, h, w]) | (Some(2), [h, w, c]) => (*c, *h, *w),
        _ => {
            return Err(OptimizeError::InvalidData(format!(
                "an image folder needs a model with an image input (C,H,W or H,W,C), this one \
                 takes {model_input:?}"
            )))
        }
    };
    let (files, labels) = match labels_csv {
        Some(csv) => {
            let (f, l) = read_labels_csv(dir, csv)?;
            (f, Some(l))
        }
        None => (list_images(dir)?, None),
    };
    if files.is_empty() {
        return Err(OptimizeError::InvalidData(format!(
            "{}: no images (.png, .jpg, .jpeg)",
            dir.display()
        )));
    }
    let mut shape = vec![files.len(), h, w];
    if channels == 3 {
        shape.push(3);
    }
    let per = h * w * channels;
    let mut out = vec![0f32; files.len() * per];
    for (i, f) in files.iter().enumerate() {
        let img = image::open(f).map_err(|e| {
            OptimizeError::InvalidData(format!("{}: not a readable image: {e}", f.display()))
        })?;
        let img = cover_crop(img, w as u32, h as u32);
        let dst = &mut out[i * per..(i + 1) * per];
        if channels == 3 {
            for (d, s) in dst.iter_mut().zip(img.to_rgb8().into_raw()) {
                *d = s as f32;
            }
        } else {
            for (d, s) in dst.iter_mut().zip(img.to_luma8().into_raw()) {
                *d = s as f32;
            }
        }
    }
    let x = ArrayD::from_shape_vec(IxDyn(&shape), out)
        .map_err(|e| OptimizeError::InvalidData(e.to_string()))?;
    Ok((x, labels))
}

/// Resize so the image covers `w` × `h`, then cut the centre.
fn cover_crop(img: DynamicImage, w: u32, h: u32) -> DynamicImage {
    let (w0, h0) = (img.width().max(1), img.height().max(1));
    let s = (w as f64 / w0 as f64).max(h as f64 / h0 as f64);
    let (w1, h1) = (
        ((w0 as f64 * s).round() as u32).max(w),
        ((h0 as f64 * s).round() as u32).max(h),
    );
    let img = if (w1, h1) == (w0, h0) {
        img
    } else {
        img.resize_exact(w1, h1, FilterType::Triangle)
    };
    img.crop_imm((w1 - w) / 2, (h1 - h) / 2, w, h)
}

fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| OptimizeError::io(dir, e))?;
    let mut files = Vec::new();
    for e in entries {
        let p = e.map_err(|e| OptimizeError::io(dir, e))?.path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        if p.is_file() && EXTENSIONS.iter().any(|x| ext.eq_ignore_ascii_case(x)) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// `filename,label` rows (a header row naming those columns first); files are relative to `dir`.
fn read_labels_csv(dir: &Path, csv_path: &Path) -> Result<(Vec<PathBuf>, Vec<i64>)> {
    let bad = |row: usize, field: &str, why: String| {
        OptimizeError::InvalidData(format!("{} row {row}: {field}: {why}", csv_path.display()))
    };
    let mut r = csv::Reader::from_path(csv_path).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(io) => OptimizeError::io(csv_path, io),
        other => OptimizeError::InvalidData(format!("{}: {other:?}", csv_path.display())),
    })?;
    let headers = r
        .headers()
        .map_err(|e| bad(1, "header", e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                bad(
                    1,
                    "header",
                    format!("needs a '{name}' column, has {headers:?}"),
                )
            })
    };
    let (fc, lc) = (col("filename")?, col("label")?);
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (i, rec) in r.records().enumerate() {
        let row = i + 2;
        let rec = rec.map_err(|e| bad(row, "record", e.to_string()))?;
        let name = rec.get(fc).unwrap_or("").trim();
        let label = rec.get(lc).unwrap_or("").trim();
        let path = dir.join(name);
        if name.is_empty() || !path.is_file() {
            return Err(bad(
                row,
                "filename",
                format!("no image '{name}' in {}", dir.display()),
            ));
        }
        let label: i64 = label
            .parse()
            .ok()
            .filter(|l| *l >= 0)
            .ok_or_else(|| bad(row, "label", format!("'{label}' is not a class index")))?;
        files.push(path);
        labels.push(label);
    }
    Ok((files, labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        // 8 x 4: left half red, right half blue; covering 4 x 4 keeps columns 2..6.
        let wide = RgbImage::from_fn(8, 4, |x, _| {
            if x < 4 {
                Rgb([255, 0, 0])
            } else {
                Rgb([0, 0, 255])
            }
        });
        wide.save(dir.path().join("b.png")).unwrap();
        RgbImage::from_pixel(2, 2, Rgb([10, 20, 30]))
            .save(dir.path().join("a.png"))
            .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        dir
    }

    #[test]
    fn images_are_covered_cropped_and_labelled() {
        let dir = folder();
        let csv = dir.path().join("labels.csv");
        std::fs::write(&csv, "filename,label\nb.png,7\na.png,3\n").unwrap();
        let (x, labels) = read_folder(dir.path(), Some(&csv), &[1, 3, 4, 4]).unwrap();
        assert_eq!(x.shape(), &[2, 4, 4, 3]);
        assert_eq!(labels, Some(vec![7, 3]));
        // Row 0 of b.png: red, red, blue, blue.
        assert_eq!(x[[0, 0, 1, 0]], 255.0);
        assert_eq!(x[[0, 0, 2, 2]], 255.0);
        assert_eq!(x[[0, 0, 2, 0]], 0.0);
        assert_eq!(x[[1, 3, 3, 2]], 30.0);
        // Without a CSV: every image, sorted by name, grayscale for a one-channel input.
        let (g, none) = read_folder(dir.path(), None, &[1, 1, 4, 4]).unwrap();
        assert_eq!(g.shape(), &[2, 4, 4]);
        assert!(none.is_none());
        assert!((g[[0, 0, 0]] - 19.0).abs() <= 1.0, "{}", g[[0, 0, 0]]);
    }

    #[test]
    fn bad_rows_name_the_row_and_field() {
        let dir = folder();
        let csv = dir.path().join("labels.csv");
        for (text, want) in [
            ("filename,label\na.png,cat\n", "row 2: label"),
            (
                "filename,label\na.png,1\nmissing.png,2\n",
                "row 3: filename",
            ),
            ("file,class\na.png,1\n", "needs a 'filename' column"),
        ] {
            std::fs::write(&csv, text).unwrap();
            let e = read_folder(dir.path(), Some(&csv), &[1, 3, 4, 4])
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        let e = read_folder(dir.path(), None, &[1, 784])
            .unwrap_err()
            .to_string();
        assert!(e.contains("image input"), "{e}");
    }
}
