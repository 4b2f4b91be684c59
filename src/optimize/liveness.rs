//! Peak activation memory by tensor liveness over a node schedule.
//!
//! A buffer is live from the step that produces it to the last step that reads it (graph inputs
//! from the start, graph outputs to the end). Two sharing rules mirror what every embedded
//! runtime's memory planner does, so the peak is not inflated by operators that allocate nothing:
//! view operators (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout, Transpose — layout
//! transposes get folded) extend their input's buffer, and elementwise operators write into an
//! input buffer of the same size that dies at that step (activations and batch norms fused into
//! the preceding layer).

use std::collections::{HashMap, HashSet};

use tract_onnx::pb;

use super::graph::VIEW_OPS;

/// Operators whose output can overwrite a same-sized input that is not read afterwards.
const ELEMENTWISE: [&str; 22] = [
    "Relu",
    "Clip",
    "LeakyRelu",
    "PRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Elu",
    "Selu",
    "Softplus",
    "BatchNormalization",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Cast",
    "QuantizeLinear",
    "DequantizeLinear",
    "Softmax",
    "Erf",
    "Sqrt",
];

/// The peak, at the step with the most live bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peak {
    pub bytes: u64,
    pub elements: u64,
}

struct Buffer {
    bytes: u64,
    elements: u64,
    start: usize,
    /// Last step reading any tensor stored in it.
    end: usize,
}

/// `size(name)` gives (bytes, elements) of a tensor (0 when unknown); constant tensors (weights)
/// and constant-folded nodes are not activations.
pub fn peak_activation(
    order: &[&pb::NodeProto],
    const_node: &[bool],
    constant: &HashSet<&str>,
    inputs: &[&str],
    outputs: &HashSet<&str>,
    size: &dyn Fn(&str) -> (u64, u64),
) -> Peak {
    let end_step = order.len();
    // Last step reading each tensor.
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (step, node) in order.iter().enumerate() {
        if const_node[step] {
            continue;
        }
        for i in node
            .input
            .iter()
            .filter(|i| !i.is_empty() && !constant.contains(i.as_str()))
        {
            last_use.insert(i.as_str(), step);
        }
    }
    for o in outputs {
        last_use.insert(o, end_step);
    }

    let mut buffers: Vec<Buffer> = Vec::new();
    let mut buffer_of: HashMap<&str, usize> = HashMap::new();
    let place =
        |name: &'_ str, shared: Option<usize>, start: usize, buffers: &mut Vec<Buffer>| -> usize {
            let end = last_use.get(name).copied().unwrap_or(start);
            match shared {
                Some(b) => {
                    buffers[b].end = buffers[b].end.max(end);
                    b
                }
                None => {
                    let (bytes, elements) = size(name);
                    buffers.push(Buffer {
                        bytes,
                        elements,
                        start,
                        end,
                    });
                    buffers.len() - 1
                }
            }
        };
    for name in inputs {
        let b = place(name, None, 0, &mut buffers);
        buffer_of.insert(name, b);
    }
    for (step, node) in order.iter().enumerate() {
        if const_node[step] {
            continue;
        }
        let op = node.op_type.as_str();
        let is_view = VIEW_OPS.contains(&op) || op == "Transpose";
        for (ix, output) in node
            .output
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.is_empty())
        {
            let shared = if ix != 0 {
                None
            } else if is_view {
                node.input
                    .first()
                    .and_then(|i| buffer_of.get(i.as_str()).copied())
            } else if ELEMENTWISE.contains(&op) {
                let out_size = size(output);
                node.input
                    .iter()
                    .filter_map(|i| buffer_of.get(i.as_str()).copied())
                    .find(|&b| {
                        buffers[b].end == step
                            && (buffers[b].bytes, buffers[b].elements) == out_size
                            && out_size.0 > 0
                    })
            } else {
                None
            };
            let b = place(output, shared, step, &mut buffers);
            buffer_of.insert(output.as_str(), b);
        }
    }

    let steps = end_step + 1;
    let mut live = vec![Peak::default(); steps];
    for b in &buffers {
        for p in &mut live[b.start..=b.end.min(end_step)] {
            p.bytes += b.bytes;
            p.elements += b.elements;
        }
    }
    live.into_iter().max_by_key(|p| p.bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> pb::NodeProto {
        pb::NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn relu_after_conv_is_in_place_and_reshape_is_free() {
        // x(100) -conv-> a(200) -relu-> b(200) -reshape-> c(200) -conv-> y(10)
        let nodes = [
            node("Conv", &["x", "w"], &["a"]),
            node("Relu", &["a"], &["b"]),
            node("Reshape", &["b", "s"], &["c"]),
            node("Conv", &["c", "w2"], &["y"]),
        ];
        let order: Vec<&pb::NodeProto> = nodes.iter().collect();
        let constant: HashSet<&str> = ["w", "s", "w2"].into_iter().collect();
        let outputs: HashSet<&str> = ["y"].into_iter().collect();
        let size = |n: &str| match n {
            "x" => (100, 100),
            "y" => (10, 10),
            _ => (200, 200),
        };
        let p = peak_activation(&order, &[false; 4], &constant, &["x"], &outputs, &size);
        // Worst step is the first conv: x and a live together.
        assert_eq!(
            p,
            Peak {
                bytes: 300,
                elements: 300
            }
        );
    }

    #[test]
    fn a_residual_input_still_read_later_is_not_overwritten() {
        // x -relu-> a ; add(x, a) -> y : relu cannot overwrite x, which the add reads later.
        let nodes = [
            node("Relu", &["x"], &["a"]),
            node("Add", &["x", "a"], &["y"]),
        ];
        let order: Vec<&pb::NodeProto> = nodes.iter().collect();
        let outputs: HashSet<&str> = ["y"].into_iter().collect();
        let p = peak_activation(
            &order,
            &[false; 2],
            &HashSet::new(),
            &["x"],
            &outputs,
            &|_| (50, 50),
        );
        // x and a live at both steps; y overwrites one of them.
        assert_eq!(p.bytes, 100);
    }
}
