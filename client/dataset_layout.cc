#include "client/dataset_layout.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <thread>
#include <unordered_map>

#include "impulse/idx.h"
#include "impulse/sha256.h"

namespace impulse {
namespace {

namespace fs = std::filesystem;

constexpr char kLayoutImageFolder[] = "image-folder";
constexpr char kLayoutIdx[] = "idx";
constexpr char kLayoutCsv[] = "csv";
constexpr int kMaxHashThreads = 4;
// Past this many, warnings of one kind are summed up in one line.
constexpr size_t kMaxWarningsPerKind = 10;

constexpr char kLayoutHint[] =
    "--data takes a folder of class folders (DIR/<class>/*.png), IDX files "
    "(*-images-idx3-ubyte[.gz] with *-labels-idx1-ubyte[.gz]) or a .csv with path,label "
    "columns";

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool IsImageFile(const fs::path& path) {
  const std::string ext = Lower(path.extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool IsHidden(const fs::path& path) { return path.filename().string().starts_with('.'); }

// Collects warnings of one kind, keeping the first few and counting the rest.
class WarningGroup {
 public:
  explicit WarningGroup(std::string summary) : summary_(std::move(summary)) {}
  void Add(std::string line) {
    if (lines_.size() < kMaxWarningsPerKind) lines_.push_back(std::move(line));
    ++count_;
  }
  void AppendTo(std::vector<std::string>* out) const {
    out->insert(out->end(), lines_.begin(), lines_.end());
    if (count_ > lines_.size()) {
      out->push_back("... and " + std::to_string(count_ - lines_.size()) + " more " + summary_ +
                     " (" + std::to_string(count_) + " in all)");
    }
  }

 private:
  std::string summary_;
  std::vector<std::string> lines_;
  size_t count_ = 0;
};

// An image file and its class, before hashing.
struct ImageEntry {
  fs::path path;     // as opened
  std::string name;  // relative to the dataset root
  std::string label;
  v1::Split split = v1::SPLIT_UNSPECIFIED;
};

std::string RelativeName(const fs::path& file, const fs::path& root) {
  fs::path relative = file.lexically_normal().lexically_relative(root.lexically_normal());
  return relative.empty() ? file.generic_string() : relative.generic_string();
}

std::string BaseName(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  std::string name = p.filename().string();
  return name.empty() || name == "." ? fs::absolute(p).lexically_normal().filename().string()
                                     : name;
}

// Hashes every path on up to `threads` threads. Each thread holds one read
// buffer (inside Sha256File), so memory does not grow with the file count.
Result<std::vector<std::string>> HashFiles(const std::vector<std::string>& paths, int threads) {
  std::vector<std::string> hashes(paths.size());
  if (threads <= 0) {
    threads = std::min<int>(kMaxHashThreads, std::max(1u, std::thread::hardware_concurrency()));
  }
  threads = std::max(1, std::min<int>(threads, static_cast<int>(paths.size())));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<Status> errors(threads);
  auto work = [&](int worker) {
    for (size_t i = next++; i < paths.size() && !failed; i = next++) {
      Result<std::string> hash = Sha256File(paths[i]);
      if (!hash.ok()) {
        errors[worker] = hash.status();
        failed = true;
        return;
      }
      hashes[i] = std::move(hash).value();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (std::thread& thread : pool) thread.join();
  for (const Status& error : errors) {
    if (!error.ok()) return error;
  }
  return hashes;
}

// Draws the test split per class when the layout gave none: each class's
// samples (in their listed order) are shuffled by one mt19937_64 seeded with
// `seed` (Fisher-Yates on the raw 64-bit outputs, so the draw is the same on
// every platform) and the first round(n * test_split) become test samples,
// keeping at least one of each split for a class of two or more.
void AssignSplits(v1::DatasetManifest* manifest, double test_split, uint64_t seed) {
  bool layout_has_test = false;
  for (const v1::Sample& sample : manifest->samples()) {
    layout_has_test = layout_has_test || sample.split() == v1::SPLIT_TEST;
  }
  if (layout_has_test) {
    for (v1::Sample& sample : *manifest->mutable_samples()) {
      if (sample.split() == v1::SPLIT_UNSPECIFIED) sample.set_split(v1::SPLIT_TRAIN);
    }
    return;
  }
  std::vector<std::vector<int>> by_class(manifest->labels_size());
  for (int i = 0; i < manifest->samples_size(); ++i) {
    by_class[manifest->samples(i).label()].push_back(i);
  }
  std::mt19937_64 rng(seed);
  for (std::vector<int>& members : by_class) {
    for (size_t i = members.size(); i > 1; --i) {
      std::swap(members[i - 1], members[rng() % i]);
    }
    const size_t n = members.size();
    size_t test = static_cast<size_t>(std::llround(static_cast<double>(n) * test_split));
    if (test_split > 0 && n >= 2) test = std::clamp<size_t>(test, 1, n - 1);
    if (n < 2) test = 0;
    for (size_t k = 0; k < n; ++k) {
      manifest->mutable_samples(members[k])->set_split(k < test ? v1::SPLIT_TEST : v1::SPLIT_TRAIN);
    }
  }
}

// The checks every layout shares: `used_labels` counts the classes that have
// at least one sample; `first_label` names one for the message.
Status CheckClasses(const std::string& path, size_t samples, size_t used_labels,
                    const std::string& first_label, const char* add_hint) {
  if (samples == 0) return InvalidArgument(path + ": no samples found; " + add_hint);
  if (used_labels < 2) {
    return InvalidArgument(path + ": only one class ('" + first_label +
                           "'); a classifier needs at least 2: " + add_hint);
  }
  return Status::Ok();
}

// Hashes the image files, gives files with the same content one source, and
// fills sources, labels and samples.
Result<DatasetPlan> FinishImageFiles(const std::string& path, std::vector<ImageEntry> entries,
                                     std::vector<std::string> warnings, const char* layout,
                                     const char* add_hint, const DatasetOptions& options) {
  DatasetPlan plan;
  plan.warnings = std::move(warnings);
  v1::DatasetManifest& manifest = plan.manifest;
  manifest.set_name(BaseName(path));
  manifest.set_layout(layout);

  std::map<std::string, uint32_t> label_index;
  for (const ImageEntry& entry : entries) label_index.emplace(entry.label, 0);
  for (auto& [label, index] : label_index) {
    index = static_cast<uint32_t>(manifest.labels_size());
    manifest.add_labels(label);
  }
  IMPULSE_RETURN_IF_ERROR(CheckClasses(path, entries.size(), label_index.size(),
                                       entries.empty() ? "" : entries.front().label, add_hint));

  std::vector<std::string> files;
  files.reserve(entries.size());
  for (const ImageEntry& entry : entries) files.push_back(entry.path.string());
  IMPULSE_ASSIGN_OR_RETURN(std::vector<std::string> hashes, HashFiles(files, options.hash_threads));

  std::unordered_map<std::string, uint32_t> source_by_hash;
  size_t duplicates = 0;
  std::string first_duplicate;
  for (size_t i = 0; i < entries.size(); ++i) {
    auto [it, inserted] =
        source_by_hash.emplace(hashes[i], static_cast<uint32_t>(manifest.sources_size()));
    if (inserted) {
      v1::DataSource* source = manifest.add_sources();
      source->set_sha256(hashes[i]);
      source->set_format(v1::SOURCE_FORMAT_IMAGE_FILE);
      source->set_name(entries[i].name);
      plan.source_paths.push_back(files[i]);
    } else if (duplicates++ == 0) {
      first_duplicate = entries[i].name + " is the same as " +
                        manifest.sources(static_cast<int>(it->second)).name();
    }
    v1::Sample* sample = manifest.add_samples();
    sample->set_source(it->second);
    sample->set_index(0);
    sample->set_label(label_index[entries[i].label]);
    sample->set_split(entries[i].split);
  }
  if (duplicates > 0) {
    plan.warnings.push_back(std::to_string(duplicates) +
                            " file(s) have the same content as another (" + first_duplicate +
                            "); each is still a sample, uploaded once");
  }
  AssignSplits(&manifest, options.test_split, options.seed);
  return plan;
}

// ---- image folders

// Adds DIR/<class>/... under `dir`; `name_root` is what names are relative to.
void ListClassFolders(const fs::path& dir, const fs::path& name_root, v1::Split split,
                      std::vector<ImageEntry>* entries, WarningGroup* ignored,
                      std::vector<std::string>* warnings) {
  std::vector<fs::path> class_dirs;
  std::error_code ec;
  for (const fs::directory_entry& child : fs::directory_iterator(dir, ec)) {
    if (IsHidden(child.path())) continue;
    if (child.is_directory(ec)) {
      class_dirs.push_back(child.path());
    } else {
      ignored->Add("ignored " + RelativeName(child.path(), name_root) +
                   ": not inside a class folder");
    }
  }
  std::sort(class_dirs.begin(), class_dirs.end());
  for (const fs::path& class_dir : class_dirs) {
    std::vector<fs::path> images;
    for (auto it = fs::recursive_directory_iterator(
             class_dir, fs::directory_options::follow_directory_symlink, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (IsHidden(it->path())) {
        if (it->is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_directory(ec)) continue;
      if (IsImageFile(it->path())) {
        images.push_back(it->path());
      } else {
        ignored->Add("ignored " + RelativeName(it->path(), name_root) +
                     ": not .png, .jpg, .jpeg or .bmp");
      }
    }
    if (images.empty()) {
      warnings->push_back("ignored class folder " + RelativeName(class_dir, name_root) +
                          ": no images in it");
      continue;
    }
    std::sort(images.begin(), images.end());
    const std::string label = class_dir.filename().string();
    for (fs::path& image : images) {
      entries->push_back({image, RelativeName(image, name_root), label, split});
    }
  }
}

std::optional<fs::path> FindChild(const fs::path& dir, std::initializer_list<const char*> names) {
  std::error_code ec;
  for (const char* name : names) {
    for (const fs::directory_entry& child : fs::directory_iterator(dir, ec)) {
      if (child.is_directory(ec) && Lower(child.path().filename().string()) == name) {
        return child.path();
      }
    }
  }
  return std::nullopt;
}

Result<DatasetPlan> ReadImageFolder(const std::string& path, const fs::path& root,
                                    const DatasetOptions& options) {
  std::vector<ImageEntry> entries;
  std::vector<std::string> warnings;
  WarningGroup ignored("ignored files");
  const std::optional<fs::path> training = FindChild(root, {"training", "train"});
  if (training) {
    const std::optional<fs::path> testing = FindChild(root, {"testing", "test"});
    ListClassFolders(*training, root, v1::SPLIT_TRAIN, &entries, &ignored, &warnings);
    if (testing) {
      ListClassFolders(*testing, root, v1::SPLIT_TEST, &entries, &ignored, &warnings);
    }
    std::error_code ec;
    for (const fs::directory_entry& child : fs::directory_iterator(root, ec)) {
      if (IsHidden(child.path()) || child.path() == *training ||
          (testing && child.path() == *testing) || !child.is_directory(ec)) {
        continue;
      }
      warnings.push_back("ignored folder " + RelativeName(child.path(), root) + ": next to " +
                         training->filename().string() +
                         "/, only the training and testing folders are read");
    }
  } else {
    ListClassFolders(root, root, v1::SPLIT_UNSPECIFIED, &entries, &ignored, &warnings);
  }
  ignored.AppendTo(&warnings);
  return FinishImageFiles(path, std::move(entries), std::move(warnings), kLayoutImageFolder,
                          kLayoutHint, options);
}

// ---- CSV

// Splits one CSV record (RFC 4180 quoting; no newlines inside quotes).
std::vector<std::string> SplitCsvLine(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::string Trim(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return text.substr(begin, text.find_last_not_of(" \t\r\n") - begin + 1);
}

Result<DatasetPlan> ReadCsv(const std::string& path, const DatasetOptions& options) {
  std::ifstream file(path);
  if (!file) return InvalidArgument(path + ": cannot open the CSV manifest");
  const fs::path root = fs::path(path).parent_path();
  std::string line;
  int line_number = 1;
  if (!std::getline(file, line)) {
    return InvalidArgument(path + ": empty CSV; the first line must name the columns path,label");
  }
  if (line.starts_with("\xEF\xBB\xBF")) line.erase(0, 3);  // a UTF-8 byte order mark
  const std::vector<std::string> header = SplitCsvLine(line);
  int path_col = -1, label_col = -1, split_col = -1;
  for (int i = 0; i < static_cast<int>(header.size()); ++i) {
    const std::string column = Lower(Trim(header[i]));
    if (column == "path") path_col = i;
    if (column == "label") label_col = i;
    if (column == "split") split_col = i;
  }
  if (path_col < 0 || label_col < 0) {
    return InvalidArgument(path +
                           ": the header line must name the columns path and label "
                           "(and optionally split), got '" +
                           Trim(line) + "'");
  }

  std::vector<ImageEntry> entries;
  std::vector<std::string> warnings;
  WarningGroup missing("rows with a missing file, skipped");
  WarningGroup malformed("malformed rows, skipped");
  while (std::getline(file, line)) {
    ++line_number;
    if (Trim(line).empty()) continue;
    const std::vector<std::string> fields = SplitCsvLine(line);
    const std::string where = path + " line " + std::to_string(line_number);
    const auto field = [&](int col) {
      return col >= 0 && col < static_cast<int>(fields.size()) ? Trim(fields[col]) : "";
    };
    const std::string file_name = field(path_col);
    const std::string label = field(label_col);
    if (file_name.empty() || label.empty()) {
      malformed.Add(where + ": empty " + (file_name.empty() ? "path" : "label") + "; skipped");
      continue;
    }
    v1::Split split = v1::SPLIT_UNSPECIFIED;
    const std::string split_text = Lower(field(split_col));
    if (split_text == "train" || split_text == "training") {
      split = v1::SPLIT_TRAIN;
    } else if (split_text == "test" || split_text == "testing") {
      split = v1::SPLIT_TEST;
    } else if (!split_text.empty()) {
      return InvalidArgument(where + ": split '" + field(split_col) +
                             "' is not train, test, training or testing (or empty)");
    }
    const fs::path image =
        fs::path(file_name).is_absolute() ? fs::path(file_name) : root / file_name;
    std::error_code ec;
    if (!fs::is_regular_file(image, ec)) {
      missing.Add(where + ": " + file_name + " does not exist; skipped");
      continue;
    }
    if (!IsImageFile(image)) {
      malformed.Add(where + ": " + file_name + " is not .png, .jpg, .jpeg or .bmp; skipped");
      continue;
    }
    entries.push_back({image, RelativeName(image, root), label, split});
  }
  missing.AppendTo(&warnings);
  malformed.AppendTo(&warnings);
  return FinishImageFiles(path, std::move(entries), std::move(warnings), kLayoutCsv,
                          "list at least two labels' images, one row per image (path,label)",
                          options);
}

// ---- IDX

constexpr char kImagesSuffix[] = "-images-idx3-ubyte";
constexpr char kLabelsSuffix[] = "-labels-idx1-ubyte";

// "train" for ".../train-images-idx3-ubyte.gz"; nullopt for any other name.
std::optional<std::string> IdxPrefix(const fs::path& file, const char* suffix) {
  std::string name = file.filename().string();
  if (name.ends_with(".gz")) name.resize(name.size() - 3);
  if (!name.ends_with(suffix) || name.size() == std::strlen(suffix)) return std::nullopt;
  return name.substr(0, name.size() - std::strlen(suffix));
}

bool HasIdxImages(const fs::path& dir) {
  std::error_code ec;
  for (const fs::directory_entry& child : fs::directory_iterator(dir, ec)) {
    if (IdxPrefix(child.path(), kImagesSuffix)) return true;
  }
  return false;
}

// labels.txt: one class name per line; blank lines at the end are ignored.
Result<std::vector<std::string>> ReadLabelNames(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return InvalidArgument(file.string() + ": cannot open");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) names.push_back(Trim(line));
  while (!names.empty() && names.back().empty()) names.pop_back();
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) {
      return InvalidArgument(file.string() + " line " + std::to_string(i + 1) +
                             ": empty class name; write one name per line, in label order");
    }
  }
  return names;
}

Result<DatasetPlan> ReadIdx(const std::string& path, const fs::path& root,
                            std::optional<std::string> only_prefix, const DatasetOptions& options) {
  // PREFIX -> images file, PREFIX -> labels file.
  std::map<std::string, fs::path> images_files, labels_files;
  std::error_code ec;
  for (const fs::directory_entry& child : fs::directory_iterator(root, ec)) {
    if (auto prefix = IdxPrefix(child.path(), kImagesSuffix)) {
      if (images_files.count(*prefix)) {
        return InvalidArgument(root.string() + ": both " + images_files[*prefix].string() +
                               " and " + child.path().string() + "; keep one of them");
      }
      images_files[*prefix] = child.path();
    } else if (auto label_prefix = IdxPrefix(child.path(), kLabelsSuffix)) {
      labels_files[*label_prefix] = child.path();
    }
  }
  if (only_prefix) {
    std::erase_if(images_files, [&](const auto& kv) { return kv.first != *only_prefix; });
  }
  if (images_files.empty()) {
    return InvalidArgument(path + ": no " + std::string(kImagesSuffix) + "[.gz] file; " +
                           kLayoutHint);
  }

  DatasetPlan plan;
  v1::DatasetManifest& manifest = plan.manifest;
  manifest.set_name(BaseName(path));
  manifest.set_layout(kLayoutIdx);
  uint32_t max_label = 0;
  std::vector<std::string> images_paths;
  for (const auto& [prefix, images_file] : images_files) {
    auto labels_it = labels_files.find(prefix);
    if (labels_it == labels_files.end()) {
      return InvalidArgument(images_file.string() + ": no matching " + prefix + kLabelsSuffix +
                             "[.gz] next to it; add the labels file");
    }
    IMPULSE_ASSIGN_OR_RETURN(IdxHeader header, ReadIdxHeader(images_file.string()));
    if (!header.is_images()) {
      return InvalidArgument(images_file.string() + ": holds labels, not images (magic 0x801)");
    }
    IMPULSE_ASSIGN_OR_RETURN(std::vector<uint8_t> labels,
                             ReadIdxLabels(labels_it->second.string()));
    if (labels.size() != header.count()) {
      return InvalidArgument(labels_it->second.string() + ": " + std::to_string(labels.size()) +
                             " labels for " + std::to_string(header.count()) + " images in " +
                             images_file.filename().string());
    }
    const std::string lower_prefix = Lower(prefix);
    const v1::Split split =
        lower_prefix == "t10k" || lower_prefix == "test" ? v1::SPLIT_TEST : v1::SPLIT_UNSPECIFIED;
    const uint32_t source = static_cast<uint32_t>(manifest.sources_size());
    v1::DataSource* data_source = manifest.add_sources();
    data_source->set_format(v1::SOURCE_FORMAT_IDX_IMAGES);
    data_source->set_name(RelativeName(images_file, root));
    plan.source_paths.push_back(images_file.string());
    for (uint32_t i = 0; i < labels.size(); ++i) {
      v1::Sample* sample = manifest.add_samples();
      sample->set_source(source);
      sample->set_index(i);
      sample->set_label(labels[i]);
      sample->set_split(split);
      max_label = std::max<uint32_t>(max_label, labels[i]);
    }
  }

  const fs::path names_file = root / "labels.txt";
  if (fs::exists(names_file, ec)) {
    IMPULSE_ASSIGN_OR_RETURN(std::vector<std::string> names, ReadLabelNames(names_file));
    if (names.size() <= max_label) {
      return InvalidArgument(names_file.string() + ": names " + std::to_string(names.size()) +
                             " classes, but the labels go up to " + std::to_string(max_label) +
                             "; write one name per line for labels 0.." +
                             std::to_string(max_label));
    }
    for (std::string& name : names) manifest.add_labels(std::move(name));
  } else {
    for (uint32_t label = 0; label <= max_label; ++label) {
      manifest.add_labels(std::to_string(label));
    }
  }
  std::vector<bool> used(manifest.labels_size(), false);
  for (const v1::Sample& sample : manifest.samples()) used[sample.label()] = true;
  const size_t used_count = std::count(used.begin(), used.end(), true);
  IMPULSE_RETURN_IF_ERROR(
      CheckClasses(path, manifest.samples_size(), used_count,
                   manifest.labels(manifest.samples_size() ? manifest.samples(0).label() : 0),
                   "the IDX labels must hold at least two different values"));

  IMPULSE_ASSIGN_OR_RETURN(std::vector<std::string> hashes,
                           HashFiles(plan.source_paths, options.hash_threads));
  for (size_t i = 0; i < hashes.size(); ++i) {
    manifest.mutable_sources(static_cast<int>(i))->set_sha256(hashes[i]);
  }
  AssignSplits(&manifest, options.test_split, options.seed);
  return plan;
}

}  // namespace

Result<DatasetPlan> ReadDataset(const std::string& path, const DatasetOptions& options) {
  if (!(options.test_split >= 0.0 && options.test_split < 1.0)) {
    return InvalidArgument("--test-split must be a fraction in [0, 1), got " +
                           std::to_string(options.test_split));
  }
  std::error_code ec;
  const fs::path data(path);
  const fs::file_status status = fs::status(data, ec);
  if (!fs::exists(status)) {
    return InvalidArgument(path + ": no such file or folder; " + kLayoutHint);
  }
  Result<DatasetPlan> plan = InvalidArgument(path + ": " + kLayoutHint);
  if (fs::is_regular_file(status)) {
    const fs::path parent = data.has_parent_path() ? data.parent_path() : fs::path(".");
    if (Lower(data.extension().string()) == ".csv") {
      plan = ReadCsv(path, options);
    } else if (auto prefix = IdxPrefix(data, kImagesSuffix)) {
      plan = ReadIdx(path, parent, prefix, options);
    } else if (auto labels_prefix = IdxPrefix(data, kLabelsSuffix)) {
      plan = ReadIdx(path, parent, labels_prefix, options);
    } else {
      return InvalidArgument(path + ": not a dataset file; " + kLayoutHint);
    }
  } else if (fs::is_directory(status)) {
    plan = HasIdxImages(data) ? ReadIdx(path, data, std::nullopt, options)
                              : ReadImageFolder(path, data, options);
  }
  if (plan.ok() && plan->manifest.samples_size() > 0) {
    bool has_test = false;
    for (const v1::Sample& sample : plan->manifest.samples()) {
      has_test = has_test || sample.split() == v1::SPLIT_TEST;
    }
    if (!has_test) {
      plan->warnings.push_back(
          "no test samples: the results will have no test metrics; "
          "use a test split above 0 or add test data");
    }
  }
  return plan;
}

}  // namespace impulse
