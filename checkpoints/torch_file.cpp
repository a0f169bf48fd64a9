#include "checkpoints/torch_file.h"

#include <cstring>
#include <fstream>
#include <functional>
#include <map>

#include <caffe2/serialize/inline_container.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"

namespace ocm::checkpoints {
namespace {

using Kind = PickleValue::Kind;

PickleRef make(Kind kind) {
  auto value = std::make_shared<PickleValue>();
  value->kind = kind;
  return value;
}

PickleRef make_text(Kind kind, std::string text) {
  PickleRef value = make(kind);
  value->text = std::move(text);
  return value;
}

const std::map<std::string, torch::ScalarType>& storage_types() {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.DoubleStorage", torch::kFloat64}, {"torch.FloatStorage", torch::kFloat32},
      {"torch.HalfStorage", torch::kFloat16},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},     {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},    {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},     {"torch.BoolStorage", torch::kBool}};
  return types;
}

// Returns the storage with this key, of this dtype and element count.
using StorageLoader =
    std::function<torch::Tensor(const std::string& key, torch::ScalarType type, int64_t numel)>;

// The stack machine of Note [torch.save files]. Opcodes are those of pickle protocols 2 to 4
// that data can use; anything else is an error naming the opcode and its offset.
class Unpickler {
 public:
  Unpickler(std::string bytes, StorageLoader load_storage, std::string where)
      : bytes_(std::move(bytes)),
        load_storage_(std::move(load_storage)),
        where_(std::move(where)) {}

  PickleRef run() {
    while (true) {
      const size_t at = pos_;
      const uint8_t op = read<uint8_t>();
      if (op == '.')
        break;
      if (!(scalar(op) || container(op) || memo(op) || object(op)))
        fail("has pickle opcode 0x" + hex(op) + " at byte " + std::to_string(at));
    }
    if (stack_.size() != 1)
      fail("ends with " + std::to_string(stack_.size()) + " values on the pickle stack");
    return stack_.back();
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const {
    throw UserError(where_, problem, "a pickle of plain data and tensors, as torch.save writes");
  }
  static std::string hex(uint8_t op) {
    const char* digits = "0123456789abcdef";
    return {digits[op >> 4], digits[op & 15]};
  }

  template <class T>
  T read() {
    T value;
    std::memcpy(&value, take(sizeof(T)), sizeof(T));  // pickle integers are little-endian
    return value;
  }
  const char* take(uint64_t n) {
    if (n > bytes_.size() - pos_)
      fail("ends in the middle of a value (byte " + std::to_string(pos_) + ")");
    const char* at = bytes_.data() + pos_;
    pos_ += n;
    return at;
  }
  std::string text(uint64_t n) { return std::string(take(n), n); }
  std::string line() {
    const size_t end = bytes_.find('\n', pos_);
    if (end == std::string::npos)
      fail("has an unterminated global name");
    std::string out = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return out;
  }

  PickleRef pop() {
    if (stack_.empty())
      fail("pops an empty pickle stack");
    PickleRef value = stack_.back();
    stack_.pop_back();
    return value;
  }
  // The values above the last MARK, removed from the stack.
  std::vector<PickleRef> pop_mark() {
    if (marks_.empty() || marks_.back() > stack_.size())
      fail("uses a MARK that was never set");
    std::vector<PickleRef> values(stack_.begin() + marks_.back(), stack_.end());
    stack_.resize(marks_.back());
    marks_.pop_back();
    return values;
  }
  PickleRef& top() {
    if (stack_.empty())
      fail("reads an empty pickle stack");
    return stack_.back();
  }

  void push_int(int64_t v) {
    PickleRef value = make(Kind::kInt);
    value->integer = v;
    stack_.push_back(value);
  }
  void push_long(uint64_t n) {
    if (n > 8)
      fail("holds an integer wider than 64 bits");
    int64_t v = 0;
    const char* b = take(n);
    for (uint64_t i = 0; i < n; ++i)
      v |= static_cast<int64_t>(static_cast<uint8_t>(b[i])) << (8 * i);
    if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80))
      v -= int64_t{1} << (8 * n);  // sign-extend two's complement
    push_int(v);
  }

  bool scalar(uint8_t op);
  bool container(uint8_t op);
  bool sequence(uint8_t op);
  bool dict(uint8_t op);
  bool memo(uint8_t op);
  bool object(uint8_t op);
  PickleRef call(const PickleRef& callable, const PickleRef& args);
  PickleRef rebuild_tensor(const std::vector<PickleRef>& args);
  PickleRef persistent(const PickleRef& id);

  std::string bytes_;
  StorageLoader load_storage_;
  std::string where_;
  size_t pos_ = 0;
  std::vector<PickleRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PickleRef> memo_;
};

bool Unpickler::scalar(uint8_t op) {
  switch (op) {
    case 0x80:
      read<uint8_t>();
      return true;  // PROTO
    case 0x95:
      read<uint64_t>();
      return true;  // FRAME
    case 'N':
      stack_.push_back(make(Kind::kNone));
      return true;
    case 0x88:
    case 0x89: {
      PickleRef value = make(Kind::kBool);
      value->boolean = op == 0x88;
      stack_.push_back(value);
      return true;
    }
    case 'J':
      push_int(read<int32_t>());
      return true;
    case 'K':
      push_int(read<uint8_t>());
      return true;
    case 'M':
      push_int(read<uint16_t>());
      return true;
    case 0x8a:
      push_long(read<uint8_t>());
      return true;  // LONG1
    case 0x8b:
      push_long(read<uint32_t>());
      return true;  // LONG4
    case 'G': {
      uint64_t bits = 0;
      for (int i = 0; i < 8; ++i)  // big-endian
        bits = (bits << 8) | read<uint8_t>();
      PickleRef value = make(Kind::kFloat);
      std::memcpy(&value->number, &bits, 8);
      stack_.push_back(value);
      return true;
    }
    case 'X':
    case 'T':
    case 'B':
      stack_.push_back(make_text(Kind::kString, text(read<uint32_t>())));
      return true;
    case 0x8c:
    case 'U':
    case 'C':
      stack_.push_back(make_text(Kind::kString, text(read<uint8_t>())));
      return true;
    case 0x8d:
    case 0x8e:
      stack_.push_back(make_text(Kind::kString, text(read<uint64_t>())));
      return true;
    default:
      return false;
  }
}

bool Unpickler::container(uint8_t op) {
  switch (op) {
    case '(':
      marks_.push_back(stack_.size());
      return true;
    case '0':
      pop();
      return true;
    case '1':
      pop_mark();
      return true;
    case '2':
      stack_.push_back(top());
      return true;
    case ']':
      stack_.push_back(make(Kind::kList));
      return true;
    case ')':
      stack_.push_back(make(Kind::kTuple));
      return true;
    case '}':
      stack_.push_back(make(Kind::kDict));
      return true;
    case 0x8f:
      stack_.push_back(make(Kind::kList));
      return true;  // EMPTY_SET, kept as a list
    default:
      return sequence(op) || dict(op);
  }
}

bool Unpickler::sequence(uint8_t op) {
  switch (op) {
    case 'l':
    case 't':
    case 0x91: {  // LIST, TUPLE, FROZENSET
      PickleRef value = make(op == 't' ? Kind::kTuple : Kind::kList);
      value->items = pop_mark();
      stack_.push_back(value);
      return true;
    }
    case 0x85:
    case 0x86:
    case 0x87: {  // TUPLE1..3
      PickleRef value = make(Kind::kTuple);
      value->items.resize(op - 0x84);
      for (auto it = value->items.rbegin(); it != value->items.rend(); ++it)
        *it = pop();
      stack_.push_back(value);
      return true;
    }
    case 'a': {
      PickleRef item = pop();
      top()->items.push_back(item);
      return true;
    }
    case 'e':
    case 0x90: {  // APPENDS, ADDITEMS
      std::vector<PickleRef> items = pop_mark();
      top()->items.insert(top()->items.end(), items.begin(), items.end());
      return true;
    }
    default:
      return false;
  }
}

bool Unpickler::dict(uint8_t op) {
  if (op != 'd' && op != 'u' && op != 's')  // DICT, SETITEMS, SETITEM
    return false;
  std::vector<PickleRef> items;
  if (op == 's') {
    PickleRef value = pop();
    items = {pop(), value};
  } else {
    items = pop_mark();
  }
  if (op == 'd')
    stack_.push_back(make(Kind::kDict));
  if (items.size() % 2 != 0 || top()->kind != Kind::kDict)
    fail("sets dict items on a " + describe(*top()));
  for (size_t i = 0; i < items.size(); i += 2)
    top()->entries.emplace_back(items[i], items[i + 1]);
  return true;
}

bool Unpickler::memo(uint8_t op) {
  switch (op) {
    case 'q':
      memo_[read<uint8_t>()] = top();
      return true;
    case 'r':
      memo_[read<uint32_t>()] = top();
      return true;
    case 0x94: {  // MEMOIZE
      const uint64_t index = memo_.size();
      memo_[index] = top();
      return true;
    }
    case 'h':
    case 'j': {
      const uint64_t index = op == 'h' ? read<uint8_t>() : read<uint32_t>();
      const auto it = memo_.find(index);
      if (it == memo_.end())
        fail("refers to memo entry " + std::to_string(index) + ", which was never stored");
      stack_.push_back(it->second);
      return true;
    }
    default:
      return false;
  }
}

bool Unpickler::object(uint8_t op) {
  switch (op) {
    case 'c': {
      std::string module = line();
      stack_.push_back(make_text(Kind::kObject, module + "." + line()));
      return true;
    }
    case 0x93: {  // STACK_GLOBAL
      PickleRef name = pop();
      PickleRef module = pop();
      stack_.push_back(make_text(Kind::kObject, module->text + "." + name->text));
      return true;
    }
    case 'R':
    case 0x81: {  // REDUCE, NEWOBJ: callable(*args)
      PickleRef args = pop();
      PickleRef callable = pop();
      stack_.push_back(call(callable, args));
      return true;
    }
    case 0x92: {  // NEWOBJ_EX
      pop();
      PickleRef args = pop();
      PickleRef callable = pop();
      stack_.push_back(call(callable, args));
      return true;
    }
    case 'b':
      pop();
      return true;  // BUILD: object state (a state_dict's _metadata) is not data
    case 'Q': {
      PickleRef id = pop();
      stack_.push_back(persistent(id));
      return true;
    }
    default:
      return false;
  }
}

PickleRef Unpickler::call(const PickleRef& callable, const PickleRef& args) {
  const std::string& name = callable->text;
  if (callable->kind != Kind::kObject || args->kind != Kind::kTuple)
    fail("calls a " + describe(*callable) + " with a " + describe(*args));
  if (name == "collections.OrderedDict" && args->items.empty())
    return make(Kind::kDict);
  if (name == "torch._utils._rebuild_tensor_v2")
    return rebuild_tensor(args->items);
  if (name == "torch.jit._pickle.restore_type_tag" && !args->items.empty())
    return args->items[0];  // LibTorch's pickler tags typed containers (Dict[str, Tensor])
  if (name == "torch._utils._rebuild_parameter" ||
      name == "torch._utils._rebuild_parameter_with_state") {
    if (args->items.empty() || args->items[0]->kind != Kind::kTensor)
      fail("rebuilds a parameter from something that is not a tensor");
    return args->items[0];
  }
  return make_text(Kind::kObject, name);  // kept opaque, never called
}

PickleRef Unpickler::rebuild_tensor(const std::vector<PickleRef>& a) {
  if (a.size() < 4 || a[0]->kind != Kind::kTensor || a[1]->kind != Kind::kInt ||
      a[2]->kind != Kind::kTuple || a[3]->kind != Kind::kTuple ||
      a[2]->items.size() != a[3]->items.size())
    fail("rebuilds a tensor from arguments other than (storage, offset, size, stride, ...)");
  std::vector<int64_t> size, stride;
  int64_t last = a[1]->integer;  // the offset of the last element
  bool empty = false;
  for (size_t i = 0; i < a[2]->items.size(); ++i) {
    size.push_back(a[2]->items[i]->integer);
    stride.push_back(a[3]->items[i]->integer);
    if (size.back() < 0 || stride.back() < 0)
      fail("holds a tensor with a negative size or stride");
    empty = empty || size.back() == 0;
    last += size.back() > 0 ? (size.back() - 1) * stride.back() : 0;
  }
  const torch::Tensor& storage = a[0]->tensor;
  if (!empty && (a[1]->integer < 0 || last >= storage.numel()))
    fail("holds a tensor that reaches past the end of its storage");
  PickleRef value = make(Kind::kTensor);
  value->tensor = storage.as_strided(size, stride, a[1]->integer);
  return value;
}

PickleRef Unpickler::persistent(const PickleRef& id) {
  const auto& f = id->items;
  if (id->kind != Kind::kTuple || f.size() != 5 || f[0]->text != "storage" ||
      f[2]->kind != Kind::kString || f[4]->kind != Kind::kInt)
    fail("refers to a storage as something other than ('storage', type, key, device, numel)");
  const auto type = storage_types().find(f[1]->text);
  if (type == storage_types().end())
    fail("holds a storage of type `" + f[1]->text + "`, which ocm does not read");
  PickleRef value = make(Kind::kTensor);
  value->tensor = load_storage_(f[2]->text, type->second, f[4]->integer);
  return value;
}

std::string resave_hint(const std::string& path) {
  return "Re-save it with PyTorch 1.6 or newer: python3 -c \"import torch; "
         "torch.save(torch.load('" +
         path + "', map_location='cpu'), 'resaved.pt')\"";
}

void check_archive(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw UserError(path, "cannot be opened", "a readable PyTorch checkpoint");
  char magic[4] = {};
  in.read(magic, 4);
  if (std::memcmp(magic, "PK\x03\x04", 4) == 0)
    return;
  if (static_cast<uint8_t>(magic[0]) == 0x80) {
    throw UserError(path, "is a legacy torch.save file (a bare pickle, PyTorch before 1.6)",
                    "the zip format of PyTorch 1.6 and newer", resave_hint(path));
  }
  throw UserError(path, "is not a PyTorch checkpoint (no zip archive, no pickle)",
                  "a file written by torch.save, or a .safetensors file");
}

}  // namespace

std::string describe(const PickleValue& value) {
  switch (value.kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kTensor:
      return "tensor";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
    case Kind::kObject:
      return value.text;
  }
  return "value";
}

PickleRef read_torch_file(const std::string& path) {
  check_archive(path);
  try {
    caffe2::serialize::PyTorchStreamReader archive(path);
    if (archive.hasRecord("byteorder")) {
      auto [data, size] = archive.getRecord("byteorder");
      if (std::string(static_cast<const char*>(data.get()), size) != "little")
        throw UserError(path, "stores big-endian tensors", "a little-endian checkpoint");
    }
    auto [pickle, pickle_size] = archive.getRecord("data.pkl");
    std::map<std::string, torch::Tensor> storages;
    auto load = [&](const std::string& key, torch::ScalarType type, int64_t numel) {
      auto& storage = storages[key];
      if (!storage.defined()) {
        auto [data, size] = archive.getRecord("data/" + key);
        const auto expected = static_cast<size_t>(numel) * c10::elementSize(type);
        if (numel < 0 || size != expected) {
          throw UserError(path + ":data/" + key, "holds " + std::to_string(size) + " bytes",
                          std::to_string(numel) + " elements of " + c10::toString(type));
        }
        storage = torch::empty({numel}, type);
        std::memcpy(storage.data_ptr(), data.get(), size);
      }
      return storage;
    };
    return Unpickler(std::string(static_cast<const char*>(pickle.get()), pickle_size), load,
                     path + ":data.pkl")
        .run();
  } catch (const c10::Error& e) {
    throw UserError(path,
                    "is a damaged zip archive (" + std::string(e.what_without_backtrace()) + ")",
                    "a complete file written by torch.save");
  }
}

void write_torch_file(const std::string& path, const std::vector<std::string>& names,
                      const std::vector<torch::Tensor>& tensors) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (size_t i = 0; i < names.size(); ++i)
    dict.insert(names[i], tensors[i].detach().cpu().contiguous());
  const std::vector<char> bytes = torch::pickle_save(dict);
  files::write_text_atomically(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace ocm::checkpoints
