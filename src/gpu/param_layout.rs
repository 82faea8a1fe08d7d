//! Where each layer's weights and biases sit in a flat f32 buffer, and the
//! packing of [`Params`] into it and back.

use ndarray::{Array1, Array2};

use super::context::Region;
use crate::model::{Layer, MlpSpec, Params};

/// One layer's place in the flat params and grads buffers: W (IN, OUT) starts
/// at `w`, b (OUT) at `b`, in floats.
pub(super) struct LayerSlots {
    pub(super) fan_in: usize,
    pub(super) fan_out: usize,
    pub(super) w: usize,
    pub(super) b: usize,
}

/// The flat layout shared by params, grads and optimizer state. Every tensor
/// starts at a multiple of `align` floats: the adapter's storage offset
/// alignment on the layered path, so it can be bound alone; 1 on the fused
/// path, which packs the tensors without padding.
pub(super) struct ParamLayout {
    pub(super) layers: Vec<LayerSlots>,
    pub(super) len: usize,
}

impl ParamLayout {
    pub(super) fn new(spec: &MlpSpec, align: usize) -> Self {
        let mut layers = Vec::new();
        let mut len = 0;
        for (fan_in, fan_out) in spec.layer_shapes() {
            let w = len;
            let b = (w + fan_in * fan_out).next_multiple_of(align);
            len = (b + fan_out).next_multiple_of(align);
            layers.push(LayerSlots { fan_in, fan_out, w, b });
        }
        Self { layers, len }
    }

    pub(super) fn weight<'a>(&self, buffer: &'a wgpu::Buffer, l: usize) -> Region<'a> {
        let slots = &self.layers[l];
        Region { buffer, offset: slots.w as u64, len: (slots.fan_in * slots.fan_out) as u64 }
    }

    pub(super) fn bias<'a>(&self, buffer: &'a wgpu::Buffer, l: usize) -> Region<'a> {
        let slots = &self.layers[l];
        Region { buffer, offset: slots.b as u64, len: slots.fan_out as u64 }
    }

    /// The flat buffer's contents; the padding between tensors stays 0.
    pub(super) fn pack(&self, params: &Params) -> Vec<f32> {
        let mut flat = vec![0.0; self.len];
        for (layer, slots) in params.layers.iter().zip(&self.layers) {
            flat[slots.w..slots.w + layer.w.len()].iter_mut().zip(layer.w.iter()).for_each(|(dst, src)| *dst = *src);
            flat[slots.b..slots.b + layer.b.len()].iter_mut().zip(layer.b.iter()).for_each(|(dst, src)| *dst = *src);
        }
        flat
    }

    pub(super) fn unpack(&self, flat: &[f32]) -> Params {
        let layers = self
            .layers
            .iter()
            .map(|s| Layer {
                w: Array2::from_shape_vec((s.fan_in, s.fan_out), flat[s.w..s.w + s.fan_in * s.fan_out].to_vec())
                    .expect("the slice holds IN * OUT floats"),
                b: Array1::from(flat[s.b..s.b + s.fan_out].to_vec()),
            })
            .collect();
        Params { layers }
    }
}
