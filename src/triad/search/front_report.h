#pragma once
// What a search leaves for people: DIR/front.md (the Pareto front as a table, each row with the command
// that reproduces it; the hypervolume after each trial; the failed and infeasible trials) and DIR/front.svg
// (one scatter per pair of objectives, the front marked; self-contained, nothing fetched). Both written
// atomically.

#include <string>

#include "triad/search/search.h"

namespace triad::search {

void write_front_report(const std::string& dir, const SearchSpace& space, const SearchOptions& options,
                        const SearchResult& result);

std::string front_markdown(const SearchSpace& space, const SearchOptions& options,
                           const SearchResult& result);
std::string front_svg(const SearchSpace& space, const SearchResult& result);

// " (energy: estimate)" or " (energy: RAPL)" after numbers that include energy; "" for no source.
std::string energy_note(const std::string& energy_source);

}  // namespace triad::search
