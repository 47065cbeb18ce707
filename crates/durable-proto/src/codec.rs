//! The codec of the generated stubs: prost's, with buffers sized for this protocol's messages.
//!
//! tonic allocates an encode buffer and a decode buffer for every call, of the codec's `buffer_size` (8 KiB by
//! default). Most of this protocol's calls carry a few hundred bytes (a completion, an empty response), so that is
//! two allocations per call from glibc's large-chunk path, which also consolidates the allocator's fast bins each
//! time. Here the buffers start at [`BUFFER_BYTES`], and the encoder reserves a message's encoded length before
//! writing it, so a large message (a history, a 1 MB payload) is one allocation rather than a chain of doublings.
//! The bytes on the wire are prost's either way.

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic_prost::ProstDecoder;

/// Where a call's encode and decode buffers start: under glibc's 1 KiB large-chunk threshold, and enough for a
/// completion or a response without growing.
pub const BUFFER_BYTES: usize = 512;

/// How much a streaming call encodes before handing it to the transport (tonic's default).
const YIELD_THRESHOLD: usize = 32 * 1024;

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_BYTES, YIELD_THRESHOLD)
}

/// Encodes `T` and decodes `U` with prost (`application/grpc+proto`).
#[derive(Debug, Clone, Copy)]
pub struct ProstCodec<T, U>(PhantomData<fn(T) -> U>);

impl<T, U> Default for ProstCodec<T, U> {
    fn default() -> Self {
        ProstCodec(PhantomData)
    }
}

impl<T, U> Codec for ProstCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}

/// Encodes a message into a buffer grown once to its encoded length.
#[derive(Debug, Clone, Copy)]
pub struct ProstEncoder<T>(PhantomData<fn(T)>);

impl<T: Message> Encoder for ProstEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        // One more pass over the message than `encode` alone (which measures it to check the room), cheaper than
        // the copies of growing the buffer by doubling as a large message is written; prost's lower-level writer
        // is not public API.
        buf.reserve(item.encoded_len());
        item.encode(buf)
            .map_err(|e| Status::internal(format!("cannot encode a message: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivityResponse, CompleteTaskResponse};
    use http_body_util::BodyExt;
    use tonic::codec::{EncodeBody, Streaming};

    /// The gRPC framing of one message: no compression, big-endian length, then prost's bytes.
    fn framed(message: &impl Message) -> Vec<u8> {
        let body = message.encode_to_vec();
        let mut out = vec![0u8];
        out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn activity_response(result_bytes: usize) -> ActivityResponse {
        ActivityResponse {
            instance_id: "order-42".into(),
            task_id: 7,
            result: Some("x".repeat(result_bytes)),
            completion_token: "token".into(),
            ..ActivityResponse::default()
        }
    }

    /// Encodes the messages as one call body with this codec, then decodes that body with it.
    async fn round_trip<T>(messages: Vec<T>) -> (Vec<u8>, Vec<T>)
    where
        T: Message + Default + Send + 'static,
    {
        let source = futures::stream::iter(messages.into_iter().map(Ok));
        let mut codec = ProstCodec::<T, T>::default();
        let body = EncodeBody::new_client(codec.encoder(), source, None, None);
        let bytes = body.collect().await.unwrap().to_bytes();
        let mut decoded = Streaming::new_request(
            codec.decoder(),
            http_body_util::Full::new(bytes.clone()),
            None,
            Some(64 << 20),
        );
        let mut out = Vec::new();
        while let Some(message) = decoded.message().await.unwrap() {
            out.push(message);
        }
        (bytes.to_vec(), out)
    }

    #[tokio::test]
    async fn messages_small_and_large_are_prosts_bytes_and_come_back_whole() {
        // Empty, under the initial buffer, and 2 MB (far over it: the encoder grows the buffer itself).
        let messages = vec![
            activity_response(0),
            activity_response(100),
            activity_response(2 << 20),
        ];
        let expected: Vec<u8> = messages.iter().flat_map(framed).collect();
        let (bytes, decoded) = round_trip(messages.clone()).await;
        assert_eq!(bytes.len(), expected.len());
        assert!(
            bytes == expected,
            "the encoded body differs from prost's bytes"
        );
        assert_eq!(decoded, messages);

        let (bytes, decoded) = round_trip(vec![CompleteTaskResponse {}]).await;
        assert_eq!(bytes, [0, 0, 0, 0, 0]);
        assert_eq!(decoded, [CompleteTaskResponse {}]);
    }
}
