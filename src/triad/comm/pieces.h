#pragma once
// Large collectives as pieces, all in flight at once. Over TCP one large message moves at ~2/3 of the rate of
// several in flight (the probe: 6.0 against 10.4 MB/s on the 100 Mbit/s link of bench/comm/slow_link.sh), so
// a block above the piece size is cut into pieces, each piece of every block one non-blocking collective.
// Config B over that link: ZeRO-1's all-gather 10.1 → 7.7 s a step; fp16's all-to-all and all-gather 4.6–4.9
// → 4.1–4.3 s; tp2's activation sums (256 KiB pieces) 10.5–10.8 → 8.7–8.9 s. Over shared memory within noise
// (docs/results/2026-12-05-zero1-all-gather.md, 2026-12-06-codec-pieces.md).
//
// Both ends of every transfer must cut it the same way: the number of pieces comes from the largest block
// of the call, so every rank must pass the same largest block (the callers' layouts are global).

#include <mpi.h>

#include <cstddef>
#include <vector>

namespace triad::comm {

class PiecedCollective {
 public:
  static constexpr size_t kPieceBytes = 4 << 20;
  // At most this many in flight (larger pieces for larger blocks): each outstanding collective holds a
  // schedule.
  static constexpr size_t kMaxPieces = 64;

  explicit PiecedCollective(size_t piece_bytes = kPieceBytes) : piece_bytes_(piece_bytes) {}

  // In place: rank r's block of `all` (counts[r] elements of `type` at offsets[r]) to every rank.
  void start_allgatherv(void* all, const std::vector<int>& counts, const std::vector<int>& offsets,
                        MPI_Datatype type, MPI_Comm comm, const char* what);
  // Bytes: send block r (send_counts[r] at send_offsets[r]) to rank r, rank r's block to receive block r.
  void start_alltoallv(const void* send, const std::vector<int>& send_counts,
                       const std::vector<int>& send_offsets, void* receive,
                       const std::vector<int>& receive_counts, const std::vector<int>& receive_offsets,
                       MPI_Comm comm, const char* what);
  // The same with every block `block_bytes` long, block r at r · block_bytes.
  void start_alltoall(const void* send, void* receive, size_t block_bytes, MPI_Comm comm, const char* what);
  void start_allgather(const void* send, void* receive, size_t block_bytes, MPI_Comm comm, const char* what);

  // In place: values[i] = op over ranks of values[i], each piece its own MPI_Iallreduce.
  void start_allreduce(float* values, size_t count, MPI_Op op, MPI_Comm comm, const char* what);

  // True once every piece has arrived (MPI_Testall); then the next start may follow.
  bool test(const char* what);
  MPI_Request* requests() { return requests_.data(); }
  int size() const { return static_cast<int>(requests_.size()); }

 private:
  struct Piece {  // MPI reads a non-blocking collective's count arrays until it completes: one set per piece
    std::vector<int> send_counts, send_offsets, receive_counts, receive_offsets;
  };
  size_t pieces_for(size_t largest_block_bytes) const;

  size_t piece_bytes_;
  std::vector<MPI_Request> requests_;
  std::vector<Piece> pieces_;
};

}  // namespace triad::comm
