#include "triad/comm/pieces.h"

#include <algorithm>
#include <cstring>

#include "triad/comm/context.h"

namespace triad::comm {

namespace {

// Piece j of `pieces` of every block (counts[r] elements at offsets[r]): the same cut on every rank.
void cut_piece(const std::vector<int>& counts, const std::vector<int>& offsets, size_t pieces, size_t j,
               std::vector<int>* piece_counts, std::vector<int>* piece_offsets) {
  piece_counts->resize(counts.size());
  piece_offsets->resize(counts.size());
  for (size_t r = 0; r < counts.size(); ++r) {
    const size_t count = static_cast<size_t>(counts[r]), per_piece = (count + pieces - 1) / pieces;
    const size_t begin = std::min(count, j * per_piece);
    (*piece_counts)[r] = static_cast<int>(std::min(count, begin + per_piece) - begin);
    (*piece_offsets)[r] = offsets[r] + static_cast<int>(begin);
  }
}

size_t largest_of(const std::vector<int>& counts) {
  return counts.empty() ? 0 : static_cast<size_t>(*std::max_element(counts.begin(), counts.end()));
}

std::vector<int> equal_byte_blocks(MPI_Comm comm, size_t block_bytes, std::vector<int>* offsets) {
  int ranks = 1;
  MPI_Comm_size(comm, &ranks);
  offsets->resize(ranks);
  for (int r = 0; r < ranks; ++r) (*offsets)[r] = static_cast<int>(r * block_bytes);
  return std::vector<int>(ranks, static_cast<int>(block_bytes));
}

}  // namespace

size_t PiecedCollective::pieces_for(size_t largest_block_bytes) const {
  return std::clamp<size_t>((largest_block_bytes + piece_bytes_ - 1) / piece_bytes_, 1, kMaxPieces);
}

void PiecedCollective::start_allgatherv(void* all, const std::vector<int>& counts,
                                        const std::vector<int>& offsets, MPI_Datatype type, MPI_Comm comm,
                                        const char* what) {
  int type_bytes = 0;
  MPI_Type_size(type, &type_bytes);
  const size_t n = pieces_for(largest_of(counts) * type_bytes);
  pieces_.assign(n, {});
  requests_.assign(n, MPI_REQUEST_NULL);
  for (size_t j = 0; j < n; ++j) {
    Piece& piece = pieces_[j];
    cut_piece(counts, offsets, n, j, &piece.receive_counts, &piece.receive_offsets);
    check_mpi(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, piece.receive_counts.data(),
                              piece.receive_offsets.data(), type, comm, &requests_[j]),
              what);
  }
}

void PiecedCollective::start_alltoallv(const void* send, const std::vector<int>& send_counts,
                                       const std::vector<int>& send_offsets, void* receive,
                                       const std::vector<int>& receive_counts,
                                       const std::vector<int>& receive_offsets, MPI_Comm comm,
                                       const char* what) {
  const size_t n = pieces_for(std::max(largest_of(send_counts), largest_of(receive_counts)));
  pieces_.assign(n, {});
  requests_.assign(n, MPI_REQUEST_NULL);
  for (size_t j = 0; j < n; ++j) {
    Piece& piece = pieces_[j];
    cut_piece(send_counts, send_offsets, n, j, &piece.send_counts, &piece.send_offsets);
    cut_piece(receive_counts, receive_offsets, n, j, &piece.receive_counts, &piece.receive_offsets);
    check_mpi(MPI_Ialltoallv(send, piece.send_counts.data(), piece.send_offsets.data(), MPI_BYTE, receive,
                             piece.receive_counts.data(), piece.receive_offsets.data(), MPI_BYTE, comm,
                             &requests_[j]),
              what);
  }
}

void PiecedCollective::start_alltoall(const void* send, void* receive, size_t block_bytes, MPI_Comm comm,
                                      const char* what) {
  std::vector<int> offsets;
  const std::vector<int> counts = equal_byte_blocks(comm, block_bytes, &offsets);
  start_alltoallv(send, counts, offsets, receive, counts, offsets, comm, what);
}

void PiecedCollective::start_allgather(const void* send, void* receive, size_t block_bytes, MPI_Comm comm,
                                       const char* what) {
  int me = 0;
  MPI_Comm_rank(comm, &me);
  std::vector<int> offsets;
  const std::vector<int> counts = equal_byte_blocks(comm, block_bytes, &offsets);
  std::memcpy(static_cast<char*>(receive) + offsets[me], send, block_bytes);
  start_allgatherv(receive, counts, offsets, MPI_BYTE, comm, what);
}

void PiecedCollective::start_allreduce(float* values, size_t count, MPI_Op op, MPI_Comm comm,
                                       const char* what) {
  const size_t n = pieces_for(count * sizeof(float));
  const size_t per_piece = (count + n - 1) / n;
  pieces_.clear();
  requests_.assign(n, MPI_REQUEST_NULL);
  for (size_t j = 0; j < n; ++j) {
    const size_t begin = std::min(count, j * per_piece), end = std::min(count, begin + per_piece);
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, values + begin, static_cast<int>(end - begin), MPI_FLOAT, op, comm,
                             &requests_[j]),
              what);
  }
}

bool PiecedCollective::test(const char* what) {
  int flag = 0;
  check_mpi(MPI_Testall(size(), requests_.data(), &flag, MPI_STATUSES_IGNORE), what);
  return flag != 0;
}

}  // namespace triad::comm
