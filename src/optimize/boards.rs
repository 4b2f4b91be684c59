//! The hardware catalogue: edge boards and inference runtimes the estimator knows.
//!
//! Figures are public datasheet-level values (core, clock, memories) and typical active power of
//! the chip or board while computing; they are starting points for sizing, not measurements of
//! a particular unit. Ids match `device_id` / `runtime_id` of the calibration measurements.

use serde::Serialize;

use super::error::{OptimizeError, Result};

/// Vector extension available to inference kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Simd {
    None,
    /// Armv7E-M / Armv8-M DSP extension (packed 16-bit MACs).
    Dsp,
    /// Arm M-profile Vector Extension (Cortex-M55/M85).
    Helium,
    /// Armv7-A / Armv8-A Advanced SIMD.
    Neon,
    /// Armv8.2-A NEON with dot-product and fp16 arithmetic.
    NeonDot,
    /// Espressif's 128-bit Processor Instruction Extensions (ESP32-S3, ESP32-P4).
    Pie,
}

/// Microcontroller (bare metal / RTOS, models in flash) or application processor (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardKind {
    Mcu,
    Linux,
}

#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub id: &'static str,
    pub name: &'static str,
    /// CPU core that runs inference, e.g. "Cortex-M7".
    pub core: &'static str,
    /// Core family used to share calibration between boards with the same core.
    pub core_family: &'static str,
    pub kind: BoardKind,
    pub default_clock_mhz: f64,
    pub cores: u32,
    pub simd: Simd,
    /// On-chip SRAM (MCU) or system RAM (Linux), KiB.
    pub ram_kb: u64,
    /// On-chip flash (MCU) or typical storage (Linux), KiB.
    pub flash_kb: u64,
    /// External RAM / flash on the usual board (SDRAM, PSRAM, QSPI), KiB; 0 when none.
    pub ext_ram_kb: u64,
    pub ext_flash_kb: u64,
    /// Typical active power while computing, mW (datasheet).
    pub active_power_mw: f64,
    /// Runtimes that run on it; the first is the default.
    pub runtimes: &'static [&'static str],
}

#[derive(Debug, Clone, Serialize)]
pub struct Runtime {
    pub id: &'static str,
    pub name: &'static str,
    /// Family used to share calibration between runtimes of the same kind.
    pub family: &'static str,
    /// Fixed RAM besides the activations (interpreter, arena bookkeeping, process), KiB.
    pub ram_overhead_kb: f64,
    /// Code size of the runtime and its kernels, KiB.
    pub flash_overhead_kb: f64,
    pub dtypes: &'static [&'static str],
}

const MCU_ARM: &[&str] = &[
    "cmsis-nn",
    "tflm",
    "tvm",
    "plumerai",
    "bosch-hale",
    "onnc",
    "tinyengine",
];
const STM32: &[&str] = &[
    "x-cube-ai",
    "cmsis-nn",
    "tflm",
    "tvm",
    "plumerai",
    "bosch-hale",
    "onnc",
    "tinyengine",
];
const ARM_LINUX: &[&str] = &[
    "ncnn",
    "tflite",
    "onnxruntime",
    "tvm",
    "pytorch",
    "openvino",
];
const STM32MP: &[&str] = &["tflite", "onnxruntime", "ncnn", "tvm"];
const ESP: &[&str] = &["esp-nn", "esp-dl", "tflm"];

macro_rules! board {
    ($id:expr, $name:expr, $core:expr, $fam:expr, $kind:ident, $mhz:expr, $cores:expr, $simd:ident,
     $ram:expr, $flash:expr, $xram:expr, $xflash:expr, $mw:expr, $rts:expr) => {
        Board {
            id: $id,
            name: $name,
            core: $core,
            core_family: $fam,
            kind: BoardKind::$kind,
            default_clock_mhz: $mhz,
            cores: $cores,
            simd: Simd::$simd,
            ram_kb: $ram,
            flash_kb: $flash,
            ext_ram_kb: $xram,
            ext_flash_kb: $xflash,
            active_power_mw: $mw,
            runtimes: $rts,
        }
    };
}

/// Every board; power and memories from the vendors' datasheets / product briefs.
#[rustfmt::skip]
pub const BOARDS: &[Board] = &[
    //      id              name                                   core          family     kind   MHz  cores SIMD    RAM KiB   flash KiB  ext RAM   ext flash   mW    runtimes
    board!("rpi4",         "Raspberry Pi 4 Model B (BCM2711, 4 GB)", "Cortex-A72", "a72",  Linux, 1500.0, 4, Neon,    4_194_304, 33_554_432, 0, 0,          6400.0, ARM_LINUX),
    board!("rpi5",         "Raspberry Pi 5 (BCM2712, 8 GB)",      "Cortex-A76",  "a76",     Linux, 2400.0, 4, NeonDot, 8_388_608, 33_554_432, 0, 0,          9000.0, ARM_LINUX),
    board!("rpi-zero-2w",  "Raspberry Pi Zero 2 W (RP3A0)",       "Cortex-A53",  "a53",     Linux, 1000.0, 4, Neon,    524_288,   16_777_216, 0, 0,          2500.0, ARM_LINUX),
    board!("stm32mp135",   "STM32MP135F-DK (512 MB DDR3L)",       "Cortex-A7",   "a7",      Linux, 1000.0, 1, Neon,    524_288,   16_777_216, 0, 0,          700.0,  STM32MP),
    board!("stm32mp157",   "STM32MP157F-DK2 (512 MB DDR3L)",      "Cortex-A7",   "a7",      Linux, 800.0,  2, Neon,    524_288,   16_777_216, 0, 0,          900.0,  STM32MP),
    board!("stm32l4r5",    "NUCLEO-L4R5ZI (STM32L4R5)",           "Cortex-M4F",  "m4",      Mcu,   120.0,  1, Dsp,     640,       2048,       0, 0,          42.0,   STM32),
    board!("psoc62",       "CY8CPROTO-062-4343W (PSoC 62)",       "Cortex-M4F",  "m4",      Mcu,   150.0,  1, Dsp,     1024,      2048,       0, 0,          40.0,   MCU_ARM),
    board!("nuvoton-m467", "NuMaker-M467HJ (M467)",               "Cortex-M4F",  "m4",      Mcu,   200.0,  1, Dsp,     512,       1024,       0, 0,          60.0,   MCU_ARM),
    board!("stm32f746",    "32F746G-DISCOVERY (STM32F746)",       "Cortex-M7",   "m7",      Mcu,   216.0,  1, Dsp,     320,       1024,       8192, 16_384, 200.0,  STM32),
    board!("stm32h743",    "NUCLEO-H743ZI2 (STM32H743)",          "Cortex-M7",   "m7",      Mcu,   480.0,  1, Dsp,     1024,      2048,       0, 0,          300.0,  STM32),
    board!("stm32h747",    "STM32H747I-DISCO (STM32H747)",        "Cortex-M7",   "m7",      Mcu,   400.0,  1, Dsp,     1024,      2048,       32_768, 131_072, 330.0, STM32),
    board!("stm32h7a3",    "NUCLEO-H7A3ZI-Q (STM32H7A3)",         "Cortex-M7",   "m7",      Mcu,   280.0,  1, Dsp,     1376,      2048,       0, 0,          125.0,  STM32),
    board!("stm32u575",    "NUCLEO-U575ZI-Q (STM32U575)",         "Cortex-M33",  "m33",     Mcu,   160.0,  1, Dsp,     786,       2048,       0, 0,          24.0,   STM32),
    board!("stm32u385",    "NUCLEO-U385RG-Q (STM32U385)",         "Cortex-M33",  "m33",     Mcu,   96.0,   1, Dsp,     256,       1024,       0, 0,          6.0,    STM32),
    board!("ra6m4",        "EK-RA6M4 (R7FA6M4)",                  "Cortex-M33",  "m33",     Mcu,   200.0,  1, Dsp,     256,       1024,       0, 0,          72.0,   MCU_ARM),
    board!("nrf5340",      "nRF5340 DK (application core)",       "Cortex-M33",  "m33",     Mcu,   128.0,  1, Dsp,     512,       1024,       0, 0,          20.0,   MCU_ARM),
    board!("ra8d1",        "EK-RA8D1 (R7FA8D1)",                  "Cortex-M85",  "m85",     Mcu,   480.0,  1, Helium,  1024,      2048,       65_536, 65_536, 170.0, MCU_ARM),
    board!("stm32g0b1",    "NUCLEO-G0B1RE (STM32G0B1)",           "Cortex-M0+",  "m0plus",  Mcu,   64.0,   1, None,    144,       512,        0, 0,          21.0,   STM32),
    board!("esp32",        "ESP32-DevKitC (ESP32-WROOM-32)",      "Xtensa LX6",  "xtensa-lx6", Mcu, 240.0, 2, None,    520,       4096,       0, 0,          165.0,  ESP),
    board!("esp32-s3",     "ESP32-S3-DevKitC-1 (N8R8)",           "Xtensa LX7",  "xtensa-lx7", Mcu, 240.0, 2, Pie,     512,       8192,       8192, 0,       150.0,  ESP),
    board!("esp32-c3",     "ESP32-C3-DevKitM-1",                  "RISC-V RV32IMC", "rv32",  Mcu,   160.0,  1, None,    400,       4096,       0, 0,          80.0,   ESP),
    board!("esp32-p4",     "ESP32-P4-Function-EV-Board",          "RISC-V RV32IMAFC (HP)", "rv32-p4", Mcu, 360.0, 2, Pie, 768,  16_384,     32_768, 0,     250.0,  ESP),
];

macro_rules! runtime {
    ($id:expr, $name:expr, $fam:expr, $ram:expr, $flash:expr, $dt:expr) => {
        Runtime {
            id: $id,
            name: $name,
            family: $fam,
            ram_overhead_kb: $ram,
            flash_overhead_kb: $flash,
            dtypes: $dt,
        }
    };
}

/// Every runtime. The RAM/flash overheads here are typical library sizes and process
/// footprints; for runtimes with published RAM/flash rows (tflm, cmsis-nn, x-cube-ai,
/// tinyengine) the calibrated medians of `calibrate::fit_memory` take precedence.
#[rustfmt::skip]
pub const RUNTIMES: &[Runtime] = &[
    //        id             name                                        family       RAM KiB  flash KiB  dtypes
    runtime!("tflm",        "TensorFlow Lite Micro (reference kernels)", "reference",  10.0,   100.0, &["int8", "fp32"]),
    runtime!("cmsis-nn",    "TFLite Micro + CMSIS-NN kernels",          "mcu-opt",    10.0,   100.0, &["int8"]),
    runtime!("x-cube-ai",   "STM32Cube.AI (X-CUBE-AI)",                 "mcu-opt",    2.0,    60.0, &["int8", "fp32"]),
    runtime!("tinyengine",  "MIT TinyEngine",                            "mcu-opt",    2.0,    50.0, &["int8"]),
    runtime!("plumerai",    "Plumerai inference engine",                 "mcu-opt",    2.0,    60.0, &["int8"]),
    runtime!("bosch-hale",  "Bosch HALE",                                "mcu-opt",    4.0,    60.0, &["int8", "fp32"]),
    runtime!("onnc",        "Skymizer ONNC (compiled)",                  "compiler",   2.0,    50.0, &["int8"]),
    runtime!("esp-nn",      "TFLite Micro + ESP-NN kernels",             "mcu-opt",    10.0,   100.0, &["int8"]),
    runtime!("esp-dl",      "Espressif ESP-DL",                          "mcu-opt",    8.0,    150.0, &["int8", "int16"]),
    runtime!("tvm",         "Apache TVM (microTVM / compiled)",          "compiler",   4.0,    80.0, &["fp32", "int8"]),
    runtime!("ncnn",        "Tencent ncnn",                              "linux-opt",  8_192.0,  2_048.0, &["fp32", "fp16", "int8"]),
    runtime!("tflite",      "TensorFlow Lite (XNNPACK delegate)",        "linux-opt",  8_192.0,  4_096.0, &["fp32", "fp16", "int8"]),
    runtime!("onnxruntime", "ONNX Runtime (CPU)",                        "linux-opt",  20_480.0, 16_384.0, &["fp32", "fp16", "int8"]),
    runtime!("openvino",    "OpenVINO (ARM CPU plugin)",                 "linux-opt",  40_960.0, 40_960.0, &["fp32", "fp16", "int8"]),
    runtime!("pytorch",     "PyTorch (CPU)",                             "linux-opt",  102_400.0, 204_800.0, &["fp32", "int8"]),
];

/// Data types the estimator knows, with bytes per element.
pub const DTYPES: &[(&str, u64)] = &[("fp32", 4), ("fp16", 2), ("int16", 2), ("int8", 1)];

pub fn board(id: &str) -> Result<&'static Board> {
    BOARDS.iter().find(|b| b.id == id).ok_or_else(|| {
        OptimizeError::invalid_argument(
            "device",
            format!(
                "unknown device `{id}`; known: {}",
                ids(BOARDS.iter().map(|b| b.id))
            ),
        )
    })
}

pub fn runtime(id: &str) -> Result<&'static Runtime> {
    RUNTIMES.iter().find(|r| r.id == id).ok_or_else(|| {
        OptimizeError::invalid_argument(
            "runtime",
            format!(
                "unknown runtime `{id}`; known: {}",
                ids(RUNTIMES.iter().map(|r| r.id))
            ),
        )
    })
}

/// Bytes per element of `dtype`.
pub fn dtype_bytes(dtype: &str) -> Result<u64> {
    DTYPES
        .iter()
        .find(|(d, _)| *d == dtype)
        .map(|(_, b)| *b)
        .ok_or_else(|| {
            OptimizeError::invalid_argument(
                "dtype",
                format!(
                    "unknown dtype `{dtype}`; known: {}",
                    ids(DTYPES.iter().map(|(d, _)| *d))
                ),
            )
        })
}

fn ids<'a>(it: impl Iterator<Item = &'a str>) -> String {
    it.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_runtimes_exist() {
        let mut seen = std::collections::HashSet::new();
        for b in BOARDS {
            assert!(seen.insert(b.id), "duplicate board {}", b.id);
            assert!(!b.runtimes.is_empty());
            for r in b.runtimes {
                assert!(runtime(r).is_ok(), "{} lists unknown runtime {r}", b.id);
            }
        }
        for r in RUNTIMES {
            for d in r.dtypes {
                assert!(dtype_bytes(d).is_ok(), "{} lists unknown dtype {d}", r.id);
            }
        }
    }

    #[test]
    fn unknown_ids_name_the_valid_choices() {
        let e = board("pi9").unwrap_err().to_string();
        assert!(
            e.contains("device") && e.contains("rpi4") && e.contains("esp32-p4"),
            "{e}"
        );
        let e = runtime("tensorrt").unwrap_err().to_string();
        assert!(e.contains("ncnn") && e.contains("tflm"), "{e}");
        assert!(dtype_bytes("int3")
            .unwrap_err()
            .to_string()
            .contains("int8"));
    }
}
