"""The bitstream container: layout, progressive cuts, corruption, limits."""

import struct
import zlib

import numpy as np
import pytest

from tfrnncomp import bitstream
from tfrnncomp import errors

CODEC_SHA = "ab" * 32
ENTROPY_SHA = "cd" * 32


def _codes(iterations, rows, columns, bits, seed=0):
  rng = np.random.default_rng(seed)
  return rng.choice(np.array([-1, 1], np.int8),
                    size=(iterations, rows, columns, bits))


def _stream(height=40, width=70, bits=8, iterations=3, coded=(1,)):
  """A stream with raw chunks, and fake range-coded ones at ``coded``."""
  codes = _codes(iterations, -(-height // 16), -(-width // 16), bits)
  chunks = [(bitstream.RANGE_CODED, bytes([t + 1]) * (5 + t)) if t in coded
            else (bitstream.RAW, bitstream.pack_raw(c))
            for t, c in enumerate(codes)]
  data = bitstream.write("toderici2017", "tiny", CODEC_SHA, height, width,
                         bits, chunks, entropy_name="binary_pixelrnn",
                         entropy_sha256=ENTROPY_SHA)
  return data, chunks, codes


def test_round_trip_keeps_every_field():
  data, chunks, _ = _stream()
  header, read_chunks = bitstream.read(data)
  assert (header.system, header.codec_name, header.codec_sha256) == (
      "toderici2017", "tiny", CODEC_SHA)
  assert (header.entropy_name, header.entropy_sha256) == ("binary_pixelrnn",
                                                          ENTROPY_SHA)
  assert (header.height, header.width, header.bits) == (40, 70, 8)
  assert (header.rows, header.columns, header.iterations) == (3, 5, 3)
  assert read_chunks == chunks
  assert header.stream_size(3) == len(data)
  # The documented layout: magic, version, flags, then the system name.
  assert data[:4] == b"\x89RNC" and data[4:6] == bytes([1, 0])
  assert data[6:7 + len("toderici2017")] == b"\x0ctoderici2017"
  (crc,) = struct.unpack(">I", data[header.size - 4:header.size])
  assert crc == zlib.crc32(data[:header.size - 4])


def test_raw_chunks_are_packed_bits():
  codes = _codes(1, 3, 5, 7)[0]
  chunk = bitstream.pack_raw(codes)
  assert len(chunk) == bitstream.raw_chunk_size(3, 5, 7) == 14  # 105 bits.
  np.testing.assert_array_equal(bitstream.unpack_raw(chunk, 3, 5, 7), codes)
  assert np.unpackbits(np.frombuffer(chunk, np.uint8))[0] == (codes.flat[0] > 0)
  with pytest.raises(errors.FormatError, match="padding"):
    bitstream.unpack_raw(chunk[:-1] + bytes([chunk[-1] | 1]), 3, 5, 7)


def test_a_stream_cut_at_any_chunk_boundary_holds_that_many_iterations():
  data, chunks, _ = _stream(iterations=4, coded=(1, 2))
  header, _ = bitstream.read(data)
  for t in range(1, 5):
    cut = data[:header.stream_size(t)]
    assert bitstream.truncate(data, t) == cut
    cut_header, cut_chunks = bitstream.read(cut)
    assert cut_header == header  # The header is kept whole.
    assert cut_chunks == chunks[:t]
  with pytest.raises(errors.FormatError, match="holds no iteration"):
    bitstream.read(data[:header.size])


def test_a_cut_inside_a_chunk_is_an_error_unless_fewer_are_asked_for():
  data, chunks, _ = _stream(iterations=3, coded=())
  header, _ = bitstream.read(data)
  cut = data[:header.stream_size(2) + 3]
  with pytest.raises(errors.FormatError, match="ends inside the chunk of "
                     "iteration 2"):
    bitstream.read(cut)
  assert bitstream.read(cut, iterations=2)[1] == chunks[:2]
  with pytest.raises(errors.FormatError, match="holds 2 complete"):
    bitstream.read(cut, iterations=3)
  with pytest.raises(errors.FormatError, match="truncated header"):
    bitstream.read(data[:header.size - 1])
  with pytest.raises(errors.FormatError, match="bytes after the last chunk"):
    bitstream.read(data + b"\0")


def test_every_flipped_header_bit_is_caught():
  data, _, _ = _stream()
  header, _ = bitstream.read(data)
  for bit in range(header.size * 8):
    corrupt = bytearray(data)
    corrupt[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(errors.FormatError) as e:
      bitstream.read(bytes(corrupt), name="x.rnc")
    message = str(e.value)
    assert "\n" not in message and message.startswith("x.rnc")


def test_a_flipped_payload_bit_is_caught_by_the_chunk_crc():
  data, _, _ = _stream(iterations=3)
  header, _ = bitstream.read(data)
  for t in range(3):
    corrupt = bytearray(data)
    corrupt[header.stream_size(t) + 2] ^= 0x10
    with pytest.raises(errors.FormatError,
                       match=f"chunk of iteration {t} fails its CRC-32"):
      bitstream.read(bytes(corrupt))
    # Earlier iterations still read, the corrupt one is not needed.
    if t:
      assert len(bitstream.read(bytes(corrupt), iterations=t)[1]) == t


def _forge(height=32, width=32, bits=8, table=((4, 0),), version=1, flags=0,
           entropy_name=b"binary_pixelrnn", system=b"toderici2017",
           count=None):
  """A header with the given values and a *valid* CRC, plus its chunks."""
  head = b"\x89RNC" + bytes([version, flags, len(system)]) + system
  head += b"\x04tiny" + bytes(32) + bytes([len(entropy_name)]) + entropy_name
  head += bytes(32) + struct.pack(">IIHB", height, width, bits,
                                  len(table) if count is None else count)
  payload = b""
  for length, coding in table:
    chunk = bytes(min(length, 4096))
    head += struct.pack(">IIB", length, zlib.crc32(chunk), coding)
    payload += chunk
  return head + struct.pack(">I", zlib.crc32(head)) + payload


@pytest.mark.parametrize("kwargs,message", [
    ({"version": 3}, "unsupported bitstream format version 3"),
    ({"version": 2}, "format version 2 does not fit system toderici2017"),
    ({"version": 1, "system": b"akbari2020", "entropy_name": b""},
     "format version 1 does not fit system akbari2020"),
    ({"version": 2, "system": b"akbari2020"}, "name no entropy model"),
    ({"version": 2, "system": b"akbari2020", "entropy_name": b"", "bits": 9},
     "9 bits per channel are outside 1 to 8"),
    ({"version": 2, "system": b"akbari2020", "entropy_name": b"",
      "table": ((4, 2), (4, 3), (4, 3))}, "hold 1 or 2 chunks, not 3"),
    ({"version": 2, "system": b"akbari2020", "entropy_name": b"",
      "table": ((4, 0),)}, "chunk 0 of this akbari2020 stream has coding 0"),
    ({"version": 2, "system": b"akbari2020", "entropy_name": b"",
      "table": ((4, 2), (4, 2))}, "has coding 2, not 3"),
    ({"version": 2, "system": b"akbari2020", "entropy_name": b"",
      "table": ((2 ** 32 - 1, 2),)}, "more than the format allows"),
    ({"flags": 1}, "unknown flags"),
    ({"count": 65, "table": ()}, "65 iterations exceed the maximum of 64"),
    ({"count": 0, "table": ()}, "0 iterations are outside"),
    ({"height": 0}, "is empty"),
    ({"height": 2 ** 15, "width": 2 ** 14 + 1}, "exceed the maximum of"),
    ({"bits": 0}, "0 bits per code position"),
    ({"bits": 1025}, "1025 bits per code position"),
    ({"table": ((4, 7),)}, "unknown coding 7"),
    ({"table": ((5, 0),)}, "raw chunk 0 has 5 bytes"),
    ({"table": ((4, 1),), "entropy_name": b""}, "names no entropy model"),
    ({"table": ((2 ** 32 - 1, 1),)}, "more than the format allows"),
    ({"system": b""}, "empty or too long"),
])
def test_forged_headers_are_rejected_before_allocating(kwargs, message):
  with pytest.raises(errors.FormatError, match=message):
    bitstream.read(_forge(**kwargs))


def test_a_forged_header_is_valid_when_its_values_are():
  header, chunks = bitstream.read(_forge())  # 2x2 positions x 8 bits = 4 B.
  assert header.iterations == 1 and chunks == [(bitstream.RAW, bytes(4))]


def test_not_a_stream():
  for data in (b"", b"PK\x03\x04", b"\x89RNG" + bytes(100)):
    with pytest.raises(errors.FormatError, match="not a tfrnncomp bitstream"):
      bitstream.read(data)
  assert not bitstream.is_bitstream(b"\x89RN")


def test_writer_checks_its_inputs():
  raw = bitstream.pack_raw(_codes(1, 1, 1, 8)[0])
  write = lambda **k: bitstream.write(**{
      "system": "toderici2017", "codec_name": "tiny",
      "codec_sha256": CODEC_SHA, "height": 16, "width": 16, "bits": 8,
      "chunks": [(bitstream.RAW, raw)], **k})
  assert bitstream.read(write())[1] == [(bitstream.RAW, raw)]
  with pytest.raises(errors.InputError, match="need an entropy model"):
    write(chunks=[(bitstream.RANGE_CODED, b"x")])
  with pytest.raises(errors.InputError, match="64 hex digits"):
    write(codec_sha256="abc")
  with pytest.raises(errors.InputError, match="65 iterations"):
    write(chunks=[(bitstream.RAW, raw)] * 65)
  with pytest.raises(errors.InputError, match="raw chunk has 2 bytes"):
    write(chunks=[(bitstream.RAW, raw * 2)])


# --- The akbari2020 layout (format version 2). ---------------------------------


def _layers(enhancement=True):
  side_info = bytes(range(16))  # C = 4: 4 minima and 4 maxima, float16.
  chunks = [(bitstream.CODE_MAP,
             bitstream.pack_code_map_chunk(4, side_info, b"coded map"))]
  if enhancement:
    chunks.append((bitstream.ENHANCEMENT, b"residual" * 10))
  return chunks


def test_akbari2020_round_trip_and_layout():
  chunks = _layers()
  data = bitstream.write("akbari2020", "akbari2020_tiny", CODEC_SHA, 30, 45,
                         5, chunks)
  assert data[4:6] == bytes([2, 0])  # Version 2.
  header, read_chunks = bitstream.read(data)
  assert read_chunks == chunks
  assert (header.version, header.system, header.bits_per_channel) == (
      2, "akbari2020", 5)
  assert header.variable_rate and header.iterations == 2
  assert (header.rows, header.columns, header.entropy_name) == (2, 3, "")
  assert bitstream.unpack_code_map_chunk(chunks[0][1]) == (
      4, bytes(range(16)), b"coded map")
  assert chunks[0][1][:2] == b"\x00\x04"  # C, big-endian.
  # Cut after chunk 0: the base layer alone.
  base = bitstream.truncate(data, 1)
  assert bitstream.read(base)[1] == chunks[:1]
  # Recurrent streams stay version 1, and their header reads as before.
  recurrent, _, _ = _stream()
  assert recurrent[4] == 1 and bitstream.read(recurrent)[0].version == 1
  assert not bitstream.read(recurrent)[0].variable_rate


def test_akbari2020_writer_and_chunk_checks():
  write = lambda **k: bitstream.write(**{
      "system": "akbari2020", "codec_name": "a", "codec_sha256": CODEC_SHA,
      "height": 16, "width": 16, "bits": 2, "chunks": _layers(), **k})
  bitstream.read(write())
  for kwargs, message in [
      ({"bits": 0}, "0 bits per code position"),
      ({"bits": 9}, "9 bits per channel"),
      ({"chunks": _layers() + [(bitstream.ENHANCEMENT, b"x")]}, "not 3"),
      ({"chunks": _layers()[::-1]}, "has coding 3, not 2"),
      ({"chunks": [(bitstream.RAW, bytes(8))]}, "has coding 0, not 2"),
      ({"entropy_name": "binary_pixelrnn", "entropy_sha256": ENTROPY_SHA},
       "name no entropy model")]:
    with pytest.raises(errors.InputError, match=message):
      write(**kwargs)
  with pytest.raises(errors.InputError, match="side information has 3"):
    bitstream.pack_code_map_chunk(4, b"abc", b"")
  with pytest.raises(errors.InputError, match="257 code map channels"):
    bitstream.pack_code_map_chunk(257, bytes(4 * 257), b"")
  for chunk, message in [(b"\x00", "shorter than its channel count"),
                         (b"\x00\x00" + bytes(8), "declares 0 channels"),
                         (b"\x00\x02" + bytes(8), "too few")]:
    with pytest.raises(errors.FormatError, match=message):
      bitstream.unpack_code_map_chunk(chunk)


def test_every_flipped_akbari2020_header_bit_is_caught():
  data = bitstream.write("akbari2020", "a", CODEC_SHA, 30, 45, 3, _layers())
  header, _ = bitstream.read(data)
  for bit in range(header.size * 8):
    corrupt = bytearray(data)
    corrupt[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(errors.FormatError):
      bitstream.read(bytes(corrupt), name="x.rnc")
