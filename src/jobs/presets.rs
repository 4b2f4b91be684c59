//! Named datasets that ship beside the server (`[jobs] datasets_dir`): the `.npy` files of
//! the project's shared data, with the preprocessing their models expect.

use serde_json::{json, Value};

pub struct Preset {
    pub name: &'static str,
    pub inputs: &'static str,
    pub labels: Option<&'static str>,
    pub preprocess: fn() -> Value,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        name: "mnist-calibration",
        inputs: "mnist_calib_images_u8.npy",
        labels: Some("mnist_calib_labels_u8.npy"),
        preprocess: pixel_over_255,
    },
    Preset {
        name: "mnist-evaluation",
        inputs: "mnist_eval_images_u8.npy",
        labels: Some("mnist_eval_labels_u8.npy"),
        preprocess: pixel_over_255,
    },
    Preset {
        name: "digits8x8",
        inputs: "digits8x8_images_f32.npy",
        labels: Some("digits8x8_labels_u8.npy"),
        preprocess: || json!({}),
    },
    Preset {
        name: "photos224-calibration",
        inputs: "photos224_calib_rgb_u8.npy",
        labels: None,
        // Caffe-style ImageNet models (SqueezeNet 1.0): BGR, mean subtracted, no scaling.
        preprocess: || json!({"layout": "NHWC", "channel_order": "BGR", "mean": [104.0, 117.0, 123.0]}),
    },
];

fn pixel_over_255() -> Value {
    json!({ "scale": 1.0 / 255.0 })
}

pub fn find(name: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.name == name)
}

pub fn names() -> String {
    PRESETS
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}
