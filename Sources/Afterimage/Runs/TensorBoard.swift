import Foundation
import Torch

/// A run's TensorBoard log: one event file in the run folder, `events.out.tfevents.afterimage`,
/// which `tensorboard --logdir RUN` (or any parent folder) reads as it grows.
///
/// The file is TensorFlow's record framing around `Event` protocol buffers, written here by hand:
///
///     record  = length (UInt64, little-endian) · masked CRC-32C of those 8 bytes (UInt32)
///             · payload (an Event message) · masked CRC-32C of the payload (UInt32)
///     masked  = ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
///
/// The messages and the field numbers used (tensorflow/core/util/event.proto and
/// tensorflow/core/framework/summary.proto):
///
///     Event    { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
///     Summary  { repeated Value value = 1; }
///     Value    { string tag = 1; float simple_value = 2; Image image = 4; TensorProto tensor = 8;
///                SummaryMetadata metadata = 9; }
///     Image    { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
///     SummaryMetadata { PluginData plugin_data = 1; }   PluginData { string plugin_name = 1; }
///     TensorProto { DataType dtype = 1 (DT_STRING = 7); TensorShapeProto tensor_shape = 2;
///                   repeated bytes string_val = 8; }
///
/// Every append is whole records flushed to the file, so a process killed mid-write leaves at
/// most one partial record at the end; a reader takes everything before it, and a resumed run
/// cuts it off together with the steps the checkpoint does not hold (`truncate(after:)`).
public struct TensorBoardLog {
  public let url: URL

  /// The log of the run in `folder`.
  public init(folder: URL) { url = folder.appendingPathComponent(Self.fileName) }

  /// "tfevents" in the name is what TensorBoard looks for.
  public static let fileName = "events.out.tfevents.afterimage"

  // MARK: writing

  /// Starts a fresh log: the version event TensorBoard expects first, then the run's command
  /// and config as text at step 0.
  public func start(command: String?, config: String, wallTime: Double = Date().timeIntervalSince1970) throws {
    var events = [Self.event(wallTime: wallTime, step: 0) { $0.string(3, "brain.Event:2") }]
    if let command { events.append(Self.textEvent(tag: "command", text: command, step: 0, wallTime: wallTime)) }
    events.append(Self.textEvent(tag: "config", text: "```\n\(config)\n```", step: 0, wallTime: wallTime))
    try FileSystem.remove(url)
    try append(events)
  }

  /// One event holding a scalar per value (`metrics.jsonl`'s keys are the tags); non-finite
  /// values are left out, as metrics.jsonl leaves them.
  public func appendScalars(_ values: [String: Double], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    let finite = values.filter { $0.value.isFinite }.sorted { $0.key < $1.key }
    guard !finite.isEmpty else { return }
    try append([Self.summaryEvent(step: step, wallTime: wallTime) { summary in
      for (tag, value) in finite {
        summary.message(1) { $0.string(1, tag); $0.float(2, Float(value)) }
      }
    }])
  }

  /// An image event: `png` (the encoded file's bytes) of `width`×`height` with `channels`
  /// (1 grey, 3 RGB, 4 RGBA).
  public func appendImage(tag: String, png: Data, width: Int, height: Int, channels: Int, step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    try append([Self.summaryEvent(step: step, wallTime: wallTime) { summary in
      summary.message(1) { value in
        value.string(1, tag)
        value.message(4) { image in
          image.varint(1, UInt64(height))
          image.varint(2, UInt64(width))
          image.varint(3, UInt64(channels))
          image.bytes(4, png)
        }
      }
    }])
  }

  /// Appends whole framed records and flushes them.
  func append(_ payloads: [Data]) throws {
    var data = Data()
    for payload in payloads { data += Self.frame(payload) }
    try FileSystem.append(data, to: url)
  }

  /// Writes the log of a run trained without one (before logs existed, or with
  /// `--no-tensorboard`) from what its folder holds: config.json's command and config as text,
  /// every line of metrics.jsonl as scalars at its step, and each `samples/step-N.png` as the
  /// image of step N. The events carry the files' modification time as their wall time (the
  /// training's own times were not kept). Returns the number of scalar events and images.
  @discardableResult
  public static func export(_ run: RunDirectory) throws -> (scalars: Int, images: Int) {
    guard FileManager.default.fileExists(atPath: run.configURL.path) else {
      throw RunError("\(run.url.path) has no config.json: give a run folder written by `afterimage classifier train` or `inverter train`")
    }
    func modified(_ url: URL) -> Double {
      ((try? FileManager.default.attributesOfItem(atPath: url.path)[.modificationDate]) as? Date)?.timeIntervalSince1970 ?? 0
    }
    let log = run.tensorBoard
    let config = try Data(contentsOf: run.configURL)
    let command = (try? JSONSerialization.jsonObject(with: config) as? [String: Any])?["command"] as? String
    try log.start(command: command, config: String(decoding: config, as: UTF8.self), wallTime: modified(run.configURL))
    var scalars = 0
    if let text = try? String(contentsOf: run.metricsURL, encoding: .utf8) {
      let time = modified(run.metricsURL)
      for line in text.split(separator: "\n") {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], let step = object["step"] as? Int else { continue }
        let values = object.compactMapValues { ($0 as? NSNumber)?.doubleValue }.filter { $0.key != "step" }
        try log.appendScalars(values, step: step, wallTime: time)
        scalars += 1
      }
    }
    let grids = ((try? FileManager.default.contentsOfDirectory(atPath: run.samplesURL.path)) ?? []).sorted()
    var images = 0
    for name in grids where name.hasPrefix("step-") && name.hasSuffix(".png") {
      guard let step = Int(name.dropFirst(5).dropLast(4)) else { continue }
      let url = run.samplesURL.appendingPathComponent(name)
      let png = try Data(contentsOf: url)
      let grid = try PNG.decode(png)
      try log.appendImage(tag: "samples", png: png, width: grid.shape[2], height: grid.shape[1], channels: grid.shape[0], step: step, wallTime: modified(url))
      images += 1
    }
    return (scalars, images)
  }

  // MARK: reading and resuming

  /// The payloads of the whole, intact records at the start of the file, and whether anything
  /// followed them (a record cut short or damaged, as a kill mid-write leaves).
  public static func records(in data: Data) -> (payloads: [Data], damagedTail: Bool) {
    var payloads: [Data] = []
    var offset = data.startIndex
    while offset < data.endIndex {
      guard data.endIndex - offset >= 12 else { return (payloads, true) }
      let header = data[offset..<(offset + 8)]
      let length = header.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
      guard readUInt32(data, at: offset + 8) == CRC32C.masked(header), length <= UInt64(data.endIndex - offset - 16) else { return (payloads, true) }
      let start = offset + 12, end = offset + 12 + Int(length)
      let payload = data[start..<end]
      guard readUInt32(data, at: end) == CRC32C.masked(payload) else { return (payloads, true) }
      payloads.append(Data(payload))
      offset = end + 4
    }
    return (payloads, false)
  }

  /// The step of an Event payload (field 2), 0 when absent.
  public static func step(ofEvent payload: Data) -> Int {
    var reader = ProtobufReader(payload)
    while let (field, value) = reader.next() {
      if field == 2, case .varint(let step) = value { return Int(Int64(bitPattern: step)) }
    }
    return 0
  }

  /// Keeps the events up to `step` and drops the rest, and any damaged tail: a run resumed from
  /// the checkpoint of `step` logs the later steps again, and TensorBoard must not show them
  /// twice. The file is replaced atomically.
  public func truncate(after step: Int) throws {
    guard let data = try? Data(contentsOf: url) else { return }
    let kept = Self.records(in: data).payloads.filter { Self.step(ofEvent: $0) <= step }
    try FileSystem.writeAtomically(kept.reduce(into: Data()) { $0 += Self.frame($1) }, to: url)
  }

  // MARK: the encoding

  /// `payload` framed as one record.
  static func frame(_ payload: Data) -> Data {
    var length = UInt64(payload.count).littleEndian
    let header = withUnsafeBytes(of: &length) { Data($0) }
    return header + littleEndian(CRC32C.masked(header)) + payload + littleEndian(CRC32C.masked(payload))
  }

  static func event(wallTime: Double, step: Int, _ body: (inout ProtobufWriter) -> Void) -> Data {
    var event = ProtobufWriter()
    event.double(1, wallTime)
    if step != 0 { event.varint(2, UInt64(bitPattern: Int64(step))) }
    body(&event)
    return event.data
  }

  static func summaryEvent(step: Int, wallTime: Double, _ values: (inout ProtobufWriter) -> Void) -> Data {
    event(wallTime: wallTime, step: step) { $0.message(5, values) }
  }

  /// A text summary: a scalar string tensor under the text plugin (Markdown, as TensorBoard renders it).
  static func textEvent(tag: String, text: String, step: Int, wallTime: Double) -> Data {
    summaryEvent(step: step, wallTime: wallTime) { summary in
      summary.message(1) { value in
        value.string(1, tag)
        value.message(9) { metadata in metadata.message(1) { $0.string(1, "text") } }
        value.message(8) { tensor in
          tensor.varint(1, 7)  // DT_STRING
          tensor.message(2) { _ in }  // a scalar: no dimensions
          tensor.bytes(8, Data(text.utf8))
        }
      }
    }
  }

  static func littleEndian(_ value: UInt32) -> Data {
    var little = value.littleEndian
    return withUnsafeBytes(of: &little) { Data($0) }
  }

  static func readUInt32(_ data: Data, at offset: Int) -> UInt32 {
    data[offset..<(offset + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
  }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord frames use it.
public enum CRC32C {
  static let table: [UInt32] = (0..<256).map { byte in
    (0..<8).reduce(UInt32(byte)) { crc, _ in crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
  }

  public static func checksum<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    ~bytes.reduce(~UInt32(0)) { crc, byte in table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
  }

  /// TFRecord's masked form, so a CRC of data that holds CRCs stays well distributed.
  public static func masked<Bytes: Sequence>(_ bytes: Bytes) -> UInt32 where Bytes.Element == UInt8 {
    let crc = checksum(bytes)
    return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
  }
}

/// A protocol-buffer message being written: fields in the order given, each a key
/// (field number · 8 + wire type) and its value.
struct ProtobufWriter {
  private(set) var data = Data()

  mutating func varint(_ field: Int, _ value: UInt64) {
    key(field, wireType: 0)
    appendVarint(value)
  }

  mutating func double(_ field: Int, _ value: Double) {
    key(field, wireType: 1)
    var bits = value.bitPattern.littleEndian
    data += withUnsafeBytes(of: &bits) { Data($0) }
  }

  mutating func float(_ field: Int, _ value: Float) {
    key(field, wireType: 5)
    var bits = value.bitPattern.littleEndian
    data += withUnsafeBytes(of: &bits) { Data($0) }
  }

  mutating func bytes(_ field: Int, _ value: Data) {
    key(field, wireType: 2)
    appendVarint(UInt64(value.count))
    data += value
  }

  mutating func string(_ field: Int, _ value: String) { bytes(field, Data(value.utf8)) }

  /// A nested message, written by `body`.
  mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
    var nested = ProtobufWriter()
    body(&nested)
    bytes(field, nested.data)
  }

  private mutating func key(_ field: Int, wireType: UInt64) { appendVarint(UInt64(field) << 3 | wireType) }

  private mutating func appendVarint(_ value: UInt64) {
    var rest = value
    while rest >= 0x80 {
      data.append(UInt8(rest & 0x7F) | 0x80)
      rest >>= 7
    }
    data.append(UInt8(rest))
  }
}

/// Reads a message's top-level fields one by one; stops at the end or at anything malformed.
struct ProtobufReader {
  enum Value {
    case varint(UInt64)
    case fixed64(UInt64)
    case bytes(Data)
    case fixed32(UInt32)
  }

  private let data: Data
  private var offset: Int

  init(_ data: Data) {
    self.data = data
    offset = data.startIndex
  }

  mutating func next() -> (field: Int, value: Value)? {
    guard let key = readVarint() else { return nil }
    let field = Int(key >> 3)
    switch key & 7 {
    case 0: return readVarint().map { (field, .varint($0)) }
    case 1: return readFixed(8).map { (field, .fixed64($0)) }
    case 5: return readFixed(4).map { (field, .fixed32(UInt32($0))) }
    case 2:
      guard let length = readVarint(), length <= UInt64(data.endIndex - offset) else { return nil }
      let bytes = data[offset..<(offset + Int(length))]
      offset += Int(length)
      return (field, .bytes(Data(bytes)))
    default: return nil
    }
  }

  private mutating func readVarint() -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while offset < data.endIndex, shift < 64 {
      let byte = data[offset]
      offset += 1
      value |= UInt64(byte & 0x7F) << shift
      if byte & 0x80 == 0 { return value }
      shift += 7
    }
    return nil
  }

  private mutating func readFixed(_ count: Int) -> UInt64? {
    guard data.endIndex - offset >= count else { return nil }
    let value = data[offset..<(offset + count)].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    offset += count
    return value
  }
}
