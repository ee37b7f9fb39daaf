import CTorch

/// Shape operations: views, joins, splits, indexing.
extension Tensor {
  /// The same elements in `shape` (one entry may be -1); copies only when a view is impossible.
  public func reshaped(_ shape: [Int]) -> Tensor {
    shape.asInt64 { Tensor(handle: checked(ct_reshape(handle, $0, $1), "reshape to \(shape)")) }
  }

  /// A view with `shape`; the tensor must be laid out compatibly.
  public func view(_ shape: [Int]) -> Tensor {
    shape.asInt64 { Tensor(handle: checked(ct_view(handle, $0, $1), "view as \(shape)")) }
  }

  /// Dimensions reordered: result dimension i is input dimension `order[i]`.
  public func permuted(_ order: [Int]) -> Tensor {
    order.asInt64 { Tensor(handle: checked(ct_permute(handle, $0, $1), "permute \(order)")) }
  }

  /// Dimensions `a` and `b` swapped.
  public func transposed(_ a: Int, _ b: Int) -> Tensor {
    Tensor(handle: checked(ct_transpose(handle, Int64(a), Int64(b)), "transpose"))
  }

  /// The transpose of a matrix.
  public var t: Tensor { transposed(0, 1) }

  /// Dimensions `start...end` merged into one.
  public func flattened(from start: Int = 0, through end: Int = -1) -> Tensor {
    Tensor(handle: checked(ct_flatten(handle, Int64(start), Int64(end)), "flatten"))
  }

  /// Every dimension of size 1 removed, or only `dim` when given.
  public func squeezed(_ dim: Int? = nil) -> Tensor {
    if let dim { return Tensor(handle: checked(ct_squeeze_dim(handle, Int64(dim)), "squeeze")) }
    return Tensor(handle: checked(ct_squeeze(handle), "squeeze"))
  }

  /// A new dimension of size 1 inserted at `dim`.
  public func unsqueezed(_ dim: Int) -> Tensor {
    Tensor(handle: checked(ct_unsqueeze(handle, Int64(dim)), "unsqueeze"))
  }

  /// A broadcast view of size `shape` (-1 keeps a dimension).
  public func expanded(_ shape: [Int]) -> Tensor {
    shape.asInt64 { Tensor(handle: checked(ct_expand(handle, $0, $1), "expand to \(shape)")) }
  }

  /// The tensor tiled `repeats[i]` times along dimension i.
  public func repeated(_ repeats: [Int]) -> Tensor {
    repeats.asInt64 { Tensor(handle: checked(ct_repeat(handle, $0, $1), "repeat")) }
  }

  /// Tensors joined along an existing dimension.
  public static func cat(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
    let handles: [ct_tensor?] = tensors.map { $0.handle }
    return handles.withUnsafeBufferPointer {
      Tensor(handle: checked(ct_cat($0.baseAddress, Int32($0.count), Int64(dim)), "cat"))
    }
  }

  /// Tensors of equal shape joined along a new dimension.
  public static func stack(_ tensors: [Tensor], dim: Int = 0) -> Tensor {
    let handles: [ct_tensor?] = tensors.map { $0.handle }
    return handles.withUnsafeBufferPointer {
      Tensor(handle: checked(ct_stack($0.baseAddress, Int32($0.count), Int64(dim)), "stack"))
    }
  }

  /// Pieces of `size` along `dim` (the last may be smaller).
  public func split(size: Int, dim: Int = 0) -> [Tensor] {
    let capacity = Swift.max(1, (self.size(dim) + size - 1) / Swift.max(size, 1))
    return collectPieces(capacity: capacity) { ct_split(handle, Int64(size), Int64(dim), $0, $1) }
  }

  /// At most `chunks` nearly equal pieces along `dim`.
  public func chunk(_ chunks: Int, dim: Int = 0) -> [Tensor] {
    collectPieces(capacity: chunks) { ct_chunk(handle, Int64(chunks), Int64(dim), $0, $1) }
  }

  private func collectPieces(capacity: Int, _ call: (UnsafeMutablePointer<ct_tensor?>, Int32) -> Int32)
    -> [Tensor]
  {
    var out = [ct_tensor?](repeating: nil, count: capacity)
    let n = out.withUnsafeMutableBufferPointer { call($0.baseAddress!, Int32(capacity)) }
    if n < 0 {
      reportShimFailure("split")
      return []
    }
    precondition(Int(n) <= capacity, "split produced \(n) pieces, more than the \(capacity) expected")
    return out.prefix(Int(n)).map { Tensor(handle: $0!) }
  }

  /// `length` elements of dimension `dim` starting at `start` (a view).
  public func narrow(dim: Int, start: Int, length: Int) -> Tensor {
    Tensor(handle: checked(ct_narrow(handle, Int64(dim), Int64(start), Int64(length)), "narrow"))
  }

  /// Elements `range` of dimension `dim` taking every `step`-th (a view).
  public func slice(dim: Int, _ range: Range<Int>, step: Int = 1) -> Tensor {
    Tensor(
      handle: checked(
        ct_slice(handle, Int64(dim), Int64(range.lowerBound), Int64(range.upperBound), Int64(step)),
        "slice"))
  }

  /// Index `index` of dimension `dim`, with that dimension removed (a view).
  public func select(dim: Int, index: Int) -> Tensor {
    Tensor(handle: checked(ct_select(handle, Int64(dim), Int64(index)), "select"))
  }

  /// `x[i]`: index `i` of the first dimension.
  public subscript(index: Int) -> Tensor { select(dim: 0, index: index) }
  /// `x[a..<b]`: a range of the first dimension.
  public subscript(range: Range<Int>) -> Tensor { slice(dim: 0, range) }

  /// The entries of dimension `dim` listed by the int64 tensor `index`.
  public func indexSelect(dim: Int, index: Tensor) -> Tensor {
    Tensor(handle: checked(ct_index_select(handle, Int64(dim), index.handle), "index_select"))
  }

  /// `out[i][j] = self[i][index[i][j]]` for dim 1, and likewise for other dims.
  public func gather(dim: Int, index: Tensor) -> Tensor {
    Tensor(handle: checked(ct_gather(handle, Int64(dim), index.handle), "gather"))
  }

  /// A copy with `source` written at `index` along `dim`.
  public func scattering(dim: Int, index: Tensor, source: Tensor) -> Tensor {
    Tensor(handle: checked(ct_scatter(handle, Int64(dim), index.handle, source.handle), "scatter"))
  }

  /// A copy with `source` added at `index` along `dim`.
  public func scatterAdding(dim: Int, index: Tensor, source: Tensor) -> Tensor {
    Tensor(
      handle: checked(ct_scatter_add(handle, Int64(dim), index.handle, source.handle), "scatter_add"))
  }

  /// The elements where the boolean `mask` is true, as a flat tensor.
  public func maskedSelect(_ mask: Tensor) -> Tensor {
    Tensor(handle: checked(ct_masked_select(handle, mask.handle), "masked_select"))
  }

  /// A copy with `value` wherever `mask` is true.
  public func maskedFill(_ mask: Tensor, with value: Double) -> Tensor {
    Tensor(handle: checked(ct_masked_fill(handle, mask.handle, value), "masked_fill"))
  }

  /// Elementwise choice: `a` where `condition` is true, else `b`.
  public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    Tensor(handle: checked(ct_where(condition.handle, a.handle, b.handle), "where"))
  }

  /// The tensor reversed along `dims`.
  public func flipped(_ dims: [Int]) -> Tensor {
    dims.asInt64 { Tensor(handle: checked(ct_flip(handle, $0, $1), "flip")) }
  }

  /// The tensor rotated by `shifts[i]` along `dims[i]` (elements wrap around).
  public func rolled(_ shifts: [Int], dims: [Int]) -> Tensor {
    precondition(shifts.count == dims.count, "roll needs one shift per dimension")
    let s = shifts.map(Int64.init)
    let d = dims.map(Int64.init)
    return Tensor(handle: checked(ct_roll(handle, s, d, Int32(s.count)), "roll"))
  }

  /// The lower triangle of a matrix (`diagonal` shifts it).
  public func tril(_ diagonal: Int = 0) -> Tensor {
    Tensor(handle: checked(ct_tril(handle, Int64(diagonal)), "tril"))
  }

  /// The diagonal of the last two (or given) dimensions.
  public func diagonal(offset: Int = 0, dim1: Int = 0, dim2: Int = 1) -> Tensor {
    Tensor(handle: checked(ct_diagonal(handle, Int64(offset), Int64(dim1), Int64(dim2)), "diagonal"))
  }
}
