//! A small builder of ONNX graphs: nodes with one output each, constants stored as
//! initializers (little-endian `raw_data`, so the file is the numbers and little else),
//! and fresh value names that cannot collide with the graph's inputs and outputs.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::type_proto::{self, Tensor};
use onnx_protobuf::{
    tensor_shape_proto, AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// The symbolic batch dimension of every input and output.
pub const BATCH: &str = "N";

/// Element types the graph's interface uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// 32-bit float.
    Float,
    /// 64-bit float (inside the graph only).
    Double,
    /// 64-bit integer (inside the graph only).
    Int64,
    /// UTF-8 string.
    String,
    /// Boolean (inside the graph only).
    Bool,
}

impl Elem {
    fn data_type(self) -> DataType {
        match self {
            Elem::Float => DataType::FLOAT,
            Elem::Double => DataType::DOUBLE,
            Elem::Int64 => DataType::INT64,
            Elem::String => DataType::STRING,
            Elem::Bool => DataType::BOOL,
        }
    }
}

/// An attribute of a node.
pub enum Attr<'a> {
    /// An integer.
    Int(&'a str, i64),
    /// A float.
    Float(&'a str, f32),
    /// A list of integers.
    Ints(&'a str, &'a [i64]),
    /// A list of strings.
    Strings(&'a str, &'a [String]),
}

/// The domain of the ONNX-ML operators (`LabelEncoder`).
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// The nodes and constants of a graph under construction.
#[derive(Default)]
pub struct Graph {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    /// Whether a node of the ONNX-ML domain was added.
    pub uses_ml: bool,
    next: usize,
    /// Scalar constants already stored, by type and bits, so each is stored once.
    scalars: std::collections::HashMap<(u8, u64), String>,
    /// Names the builder must not give (the graph's inputs and outputs).
    reserved: std::collections::HashSet<String>,
}

impl Graph {
    /// A graph that names no value after the graph's inputs and outputs, `reserved`.
    pub fn new(reserved: impl IntoIterator<Item = String>) -> Graph {
        Graph {
            reserved: reserved.into_iter().collect(),
            ..Graph::default()
        }
    }

    /// A fresh value name: `t<n>`, short (a graph names hundreds of values), skipping
    /// the reserved names.
    pub fn fresh(&mut self, _hint: &str) -> String {
        loop {
            self.next += 1;
            let name = format!("t{}", self.next);
            if !self.reserved.contains(&name) {
                return name;
            }
        }
    }

    /// Adds node `op` over `inputs` writing a fresh value, and returns that value's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attrs: &[Attr]) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.op_into(op, inputs, attrs, &out);
        out
    }

    /// Adds node `op` of the ONNX-ML domain over `inputs`, returning its output.
    pub fn ml_op(&mut self, op: &str, inputs: &[&str], attrs: &[Attr]) -> String {
        let out = self.op(op, inputs, attrs);
        if let Some(n) = self.nodes.last_mut() {
            n.domain = ML_DOMAIN.into();
        }
        self.uses_ml = true;
        out
    }

    /// Adds node `op` over `inputs` writing the value `out` (a graph output).
    pub fn op_into(&mut self, op: &str, inputs: &[&str], attrs: &[Attr], out: &str) {
        let mut n = NodeProto::new();
        n.op_type = op.into();
        n.input = inputs.iter().map(|s| s.to_string()).collect();
        n.output = vec![out.to_string()];
        n.attribute = attrs.iter().map(attribute).collect();
        self.nodes.push(n);
    }

    /// Shorthand for a binary operation.
    pub fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        self.op(op, &[a, b], &[])
    }

    /// `Cast` of `x` to `to`.
    pub fn cast(&mut self, x: &str, to: Elem) -> String {
        self.op("Cast", &[x], &[Attr::Int("to", to.data_type() as i64)])
    }

    fn constant(&mut self, hint: &str, dims: &[usize], elem: Elem, raw: Vec<u8>) -> String {
        let mut t = TensorProto::new();
        t.name = self.fresh(hint);
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = elem.data_type() as i32;
        t.raw_data = raw;
        let name = t.name.clone();
        self.initializers.push(t);
        name
    }

    /// A float constant of shape `dims`.
    pub fn f32s(&mut self, hint: &str, dims: &[usize], v: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), v.len(), "f32s {hint}");
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(hint, dims, Elem::Float, raw)
    }

    /// A double constant of shape `dims`.
    pub fn f64s(&mut self, hint: &str, dims: &[usize], v: &[f64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), v.len(), "f64s {hint}");
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(hint, dims, Elem::Double, raw)
    }

    /// A scalar double constant (stored once however often it is used).
    pub fn f64(&mut self, v: f64) -> String {
        if let Some(name) = self.scalars.get(&(0, v.to_bits())) {
            return name.clone();
        }
        let name = self.f64s("c", &[], &[v]);
        self.scalars.insert((0, v.to_bits()), name.clone());
        name
    }

    /// A scalar float constant (stored once however often it is used).
    pub fn f32(&mut self, v: f32) -> String {
        let key = (1, u64::from(v.to_bits()));
        if let Some(name) = self.scalars.get(&key) {
            return name.clone();
        }
        let name = self.f32s("c", &[], &[v]);
        self.scalars.insert(key, name.clone());
        name
    }

    /// An int64 constant of shape `dims`.
    pub fn i64s(&mut self, hint: &str, dims: &[usize], v: &[i64]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), v.len(), "i64s {hint}");
        let raw = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.constant(hint, dims, Elem::Int64, raw)
    }

    /// A boolean constant of shape `dims`.
    pub fn bools(&mut self, hint: &str, dims: &[usize], v: &[bool]) -> String {
        let raw = v.iter().map(|&b| u8::from(b)).collect();
        self.constant(hint, dims, Elem::Bool, raw)
    }

    /// A string constant of shape `dims` (strings have no raw form).
    pub fn strings(&mut self, hint: &str, dims: &[usize], v: &[String]) -> String {
        let mut t = TensorProto::new();
        t.name = self.fresh(hint);
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::STRING as i32;
        t.string_data = v.iter().map(|s| s.as_bytes().to_vec()).collect();
        let name = t.name.clone();
        self.initializers.push(t);
        name
    }
}

fn attribute(a: &Attr) -> AttributeProto {
    let mut p = AttributeProto::new();
    match *a {
        Attr::Int(name, v) => {
            p.name = name.into();
            p.type_ = AttributeType::INT.into();
            p.i = v;
        }
        Attr::Float(name, v) => {
            p.name = name.into();
            p.type_ = AttributeType::FLOAT.into();
            p.f = v;
        }
        Attr::Ints(name, v) => {
            p.name = name.into();
            p.type_ = AttributeType::INTS.into();
            p.ints = v.to_vec();
        }
        Attr::Strings(name, v) => {
            p.name = name.into();
            p.type_ = AttributeType::STRINGS.into();
            p.strings = v.iter().map(|s| s.as_bytes().to_vec()).collect();
        }
    }
    p
}

/// A dimension of an interface tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dim {
    /// The symbolic batch dimension [`BATCH`].
    Batch,
    /// A fixed size.
    Fixed(usize),
}

/// Declares a graph input or output.
pub fn value_info(name: &str, elem: Elem, dims: &[Dim], doc: &str) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = tensor_shape_proto::Dimension::new();
        match *d {
            Dim::Batch => dim.set_dim_param(BATCH.into()),
            Dim::Fixed(n) => dim.set_dim_value(n as i64),
        }
        shape.dim.push(dim);
    }
    let mut tensor = Tensor::new();
    tensor.elem_type = elem.data_type() as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.into();
    v.type_ = Some(ty).into();
    v.doc_string = doc.into();
    v
}
