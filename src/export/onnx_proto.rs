//! The ONNX messages the exporter writes, declared by hand for prost's derive.
//!
//! Why by hand: generating them from onnx.proto would need protoc on every
//! build machine (prost-build runs it from a build script), for eight
//! messages of which we fill a few fields each. prost still does all of the
//! wire encoding; what is written here is only the schema, and the schema's
//! meaning lies entirely in the tag numbers, each copied from the official
//! onnx/onnx.proto (noted beside every field). Fields the exporter never sets
//! are left out: a reader sees them as absent, which the format allows.
//!
//! onnx.proto is proto2. A field declared here without `optional` is not
//! written when it holds its default (0, ""), which a proto2 reader takes as
//! the same default; none of the values the exporter relies on is a default
//! except the empty default-domain name, which onnx.proto defines as "absent".

/// TensorProto.DataType.FLOAT (onnx.proto: `FLOAT = 1`).
pub const DATA_TYPE_FLOAT: i32 = 1;

/// AttributeProto.AttributeType.FLOAT (onnx.proto: `FLOAT = 1`).
pub const ATTRIBUTE_FLOAT: i32 = 1;

/// AttributeProto.AttributeType.INT (onnx.proto: `INT = 2`).
pub const ATTRIBUTE_INT: i32 = 2;

/// onnx.proto `message ModelProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// `optional int64 ir_version = 1;`
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// `optional string producer_name = 2;`
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// `optional string producer_version = 3;`
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// `optional string doc_string = 6;`
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// `optional GraphProto graph = 7;`
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// `repeated OperatorSetIdProto opset_import = 8;`
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
}

/// onnx.proto `message OperatorSetIdProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// `optional string domain = 1;` ("" or absent: the default ONNX domain)
    #[prost(string, tag = "1")]
    pub domain: String,
    /// `optional int64 version = 2;`
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// onnx.proto `message GraphProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// `repeated NodeProto node = 1;` (sorted topologically)
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// `optional string name = 2;`
    #[prost(string, tag = "2")]
    pub name: String,
    /// `repeated TensorProto initializer = 5;`
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// `repeated ValueInfoProto input = 11;`
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// `repeated ValueInfoProto output = 12;`
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// onnx.proto `message NodeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// `repeated string input = 1;`
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// `repeated string output = 2;`
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// `optional string name = 3;`
    #[prost(string, tag = "3")]
    pub name: String,
    /// `optional string op_type = 4;`
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// `repeated AttributeProto attribute = 5;`
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// onnx.proto `message AttributeProto`, for float and integer attributes only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// `optional string name = 1;`
    #[prost(string, tag = "1")]
    pub name: String,
    /// `optional float f = 2;`
    #[prost(float, tag = "2")]
    pub f: f32,
    /// `optional int64 i = 3;`
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// `optional AttributeType type = 20;` (an enum: encoded as an int32)
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// onnx.proto `message TensorProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `repeated int64 dims = 1;` (not `[packed = true]` in onnx.proto)
    #[prost(int64, repeated, packed = "false", tag = "1")]
    pub dims: Vec<i64>,
    /// `optional int32 data_type = 2;`
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// `optional string name = 8;`
    #[prost(string, tag = "8")]
    pub name: String,
    /// `optional bytes raw_data = 9;` (fixed-width little-endian, row-major)
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// onnx.proto `message ValueInfoProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// `optional string name = 1;`
    #[prost(string, tag = "1")]
    pub name: String,
    /// `optional TypeProto type = 2;`
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// onnx.proto `message TypeProto`, of which only the tensor type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// `oneof value { Tensor tensor_type = 1; ... }`
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
}

pub mod type_proto {
    /// The `value` oneof of TypeProto.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `Tensor tensor_type = 1;`
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }

    /// onnx.proto `message TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        /// `optional int32 elem_type = 1;` (a TensorProto.DataType)
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        /// `optional TensorShapeProto shape = 2;`
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }
}

/// onnx.proto `message TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// `repeated Dimension dim = 1;`
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

pub mod tensor_shape_proto {
    /// onnx.proto `message TensorShapeProto.Dimension`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        /// `oneof value { int64 dim_value = 1; string dim_param = 2; }`
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
    }

    pub mod dimension {
        /// The `value` oneof of Dimension: a size or a symbolic name. Inside
        /// a oneof even 0 and "" are written, so the choice is never lost.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            /// `int64 dim_value = 1;`
            #[prost(int64, tag = "1")]
            DimValue(i64),
            /// `string dim_param = 2;`
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}
