// Pack records, indexes, the record cipher and manifests on their own.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "runtime/base/crypto.hpp"
#include "runtime/keys/cipher.hpp"
#include "runtime/store/manifest.hpp"
#include "runtime/store/pack.hpp"
#include "simd/deflate.hpp"

using namespace dsmil;

namespace {

std::string text(size_t n) {
  std::string s;
  while (s.size() < n)
    s += "the quick brown fox jumps over the lazy dog " + std::to_string(s.size()) + "\n";
  s.resize(n);
  return s;
}

} // namespace

TEST_CASE("a record round-trips raw, deflated and sealed, and names its id") {
  simd::deflater d(1);
  uint8_t k[32] = {1, 2, 3};
  const auto keys = store_keys::derive(std::string(reinterpret_cast<char*>(k), 32));
  for (size_t size : {size_t{100}, min_deflate_size - 1, size_t{70000}}) {
    for (const store_keys* key : {static_cast<const store_keys*>(nullptr), &keys}) {
      CAPTURE(size);
      CAPTURE(key != nullptr);
      const std::string plain = text(size);
      const digest id = key ? hmac_sha256(key->mac, plain) : sha256(plain);
      std::string rec;
      encode_record(id, plain, &d, rec, key);
      // Below min_deflate_size a record is stored raw; text above it shrinks.
      CHECK(record_is_deflated(rec) == (size >= min_deflate_size));
      chunk_location loc{"p", 8, rec.size()};
      auto back = decode_record(rec, loc, to_hex(id), "packs/p", key);
      REQUIRE_MESSAGE(back.ok(), back.err().message);
      CHECK(*back == plain);
      // Another id: named, not returned.
      auto wrong = decode_record(rec, loc, std::string(64, '0'), "packs/p", key);
      REQUIRE_FALSE(wrong);
      CHECK(wrong.err().message.find("instead") != std::string::npos);
    }
  }
}

TEST_CASE("every bit of a record header and payload is checked") {
  simd::deflater d(1);
  const std::string plain = text(5000);
  const digest id = sha256(plain);
  std::string rec;
  encode_record(id, plain, &d, rec);
  chunk_location loc{"p", 8, rec.size()};
  for (size_t at = 0; at < rec.size(); at += (at < record_header_size ? 1 : 97)) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = rec;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      auto r = decode_record(bad, loc, to_hex(id), "packs/p");
      CAPTURE(at);
      CAPTURE(bit);
      REQUIRE_FALSE(r.ok());
      // A flipped cipher byte makes the record claim encryption: without a
      // key that reads as "cannot open", still naming the pack.
      CHECK((r.err().code == errc::integrity_error ||
             (at == 6 && r.err().code == errc::unavailable)));
      CHECK(r.err().message.find("packs/p") != std::string::npos);
    }
  }
}

TEST_CASE("an index line parses back; a malformed one names its file and line") {
  const std::string id(64, 'a');
  std::map<std::string, chunk_location> out;
  REQUIRE_FALSE(parse_index(index_line(id, 8, 100) + index_line(std::string(64, 'b'), 108, 60), "p",
                            "index/p.idx", out));
  CHECK(out.at(id).offset == 8);
  CHECK(out.at(id).length == 100);
  CHECK(out.at(std::string(64, 'b')).pack == "p");
  auto err = parse_index(index_line(id, 8, 100) + "xyz 1\n", "p", "index/p.idx", out);
  CHECK(err.message == "index/p.idx:2: malformed index line");
}

TEST_CASE("AES-256-GCM: sealed bytes open with the key and the same associated data only") {
  std::array<uint8_t, 32> key{}, other{};
  key[0] = 1;
  other[0] = 2;
  const std::string plain = "device state";
  const uint8_t aad[4] = {1, 2, 3, 4}, aad2[4] = {1, 2, 3, 5};
  std::string sealed;
  aes_gcm_seal(key, plain.data(), plain.size(), aad, 4, sealed);
  CHECK(sealed.size() > plain.size()); // nonce and tag
  CHECK(sealed.find(plain) == std::string::npos);
  auto open = aes_gcm_open(key, sealed.data(), sealed.size(), aad, 4);
  REQUIRE(open);
  CHECK(*open == plain);
  CHECK(aes_gcm_open(other, sealed.data(), sealed.size(), aad, 4).err().code ==
        errc::integrity_error);
  CHECK(aes_gcm_open(key, sealed.data(), sealed.size(), aad2, 4).err().code ==
        errc::integrity_error);
  std::string flipped = sealed;
  flipped[flipped.size() / 2] ^= 1;
  CHECK(aes_gcm_open(key, flipped.data(), flipped.size(), aad, 4).err().code ==
        errc::integrity_error);
}

TEST_CASE("a manifest round-trips exactly; a changed chunk list no longer matches its roots") {
  manifest m;
  m.info.id = "019395f0-1c2d-7e3f-8a9b-0c1d2e3f4a5b";
  m.info.name = "n";
  m.info.type = checkpoint_type::manual;
  m.info.created_at = "2026-12-01T00:00:00.000Z";
  m.configuration = {std::string(64, 'c'), 10};
  m.devices.push_back({0x8000, {std::string(64, 'd'), 400}});
  compute_roots(m);
  const std::string body = encode_manifest(m);
  auto back = decode_manifest(body, "manifests/x.json");
  REQUIRE_MESSAGE(back.ok(), back.err().message);
  CHECK(encode_manifest(*back) == body); // the signed bytes are reproducible
  std::string bad = body;
  const auto at = bad.find(std::string(64, 'd'));
  REQUIRE(at != std::string::npos);
  bad[at] = 'e';
  auto r = decode_manifest(bad, "manifests/x.json");
  REQUIRE_FALSE(r);
  CHECK(r.err().code == errc::integrity_error);
  CHECK(r.err().message.find("manifests/x.json") != std::string::npos);
}

TEST_CASE("a manifest's hand-written chunk lists read back as written, whatever the names") {
  manifest m;
  m.info.id = "019395f0-1c2d-7e3f-8a9b-0c1d2e3f4a5b";
  // Text equal to the encoder's markers, and text JSON escapes.
  m.info.name = std::string(1, 1) + "streams";
  m.info.description = std::string(1, 1) + "devices \"quoted\"\n\\ tab\t";
  m.info.type = checkpoint_type::manual;
  m.info.created_at = "2026-12-01T00:00:00.000Z";
  m.configuration = {std::string(64, 'c'), 10};
  for (device_id d : {0x8000, 0x8001, 0x8063})
    m.devices.push_back({d, {std::string(64, 'a' + (d & 7)), 400u + d}});
  m.streams.push_back(
      {"agents/streams/a01", 3, {{std::string(64, '1'), 1}, {std::string(64, '2'), 2}}, {}});
  m.streams.push_back({"empty", 0, {}, {}});
  m.streams.push_back({"db/\"odd\" name\n", 5, {{std::string(64, '3'), 5}}, {}});
  compute_roots(m);
  const std::string body = encode_manifest(m);
  // Plain JSON, two-space indented like the rest of the body.
  auto j = nlohmann::json::parse(body);
  CHECK(j["components"]["streams"].size() == 3);
  CHECK(j["components"]["devices"]["devices"][2]["id"] == "0x8063");
  CHECK(body.find("\n      {\n        \"chunks\": [\n          [\"1111") != std::string::npos);
  auto back = decode_manifest(body, "manifests/x.json");
  REQUIRE_MESSAGE(back.ok(), back.err().message);
  CHECK(back->info.name == m.info.name);
  CHECK(back->info.description == m.info.description);
  REQUIRE(back->devices.size() == 3);
  for (size_t k = 0; k < 3; ++k) {
    CHECK(back->devices[k].device == m.devices[k].device);
    CHECK(back->devices[k].chunk.id == m.devices[k].chunk.id);
    CHECK(back->devices[k].chunk.size == m.devices[k].chunk.size);
  }
  REQUIRE(back->streams.size() == 3);
  for (size_t k = 0; k < 3; ++k) {
    CHECK(back->streams[k].name == m.streams[k].name);
    CHECK(back->streams[k].size == m.streams[k].size);
    CHECK(back->streams[k].root == m.streams[k].root);
    REQUIRE(back->streams[k].chunks.size() == m.streams[k].chunks.size());
    for (size_t i = 0; i < m.streams[k].chunks.size(); ++i) {
      CHECK(back->streams[k].chunks[i].id == m.streams[k].chunks[i].id);
      CHECK(back->streams[k].chunks[i].size == m.streams[k].chunks[i].size);
    }
  }
  CHECK(encode_manifest(*back) == body);
}

TEST_CASE(
    "a signature file is read strictly: unknown or missing fields, other values, other bytes") {
  signature_file s{"ecdsa-p256-sha256", "software", std::string(64, 'a'), std::string(64, 'b'),
                   "3045"};
  const std::string good = encode_signature(s);
  REQUIRE(decode_signature(good, "x.sig").ok());
  auto reject = [](const std::string& text, const std::string& why) {
    auto r = decode_signature(text, "x.sig");
    REQUIRE_FALSE(r);
    CHECK(r.err().code == errc::integrity_error);
    CHECK_MESSAGE(r.err().message.find(why) != std::string::npos, r.err().message);
  };
  reject(good.substr(0, good.size() - 3), "not valid JSON");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = good;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  reject(with("\"scheme\"", "\"schema\""), "unknown field 'schema'");
  reject(with("ecdsa-p256-sha256", "ecdsa-p256-sha255"), "unknown scheme");
  reject(with("software", "softwarf"), "unknown provider");
  reject(with(std::string(64, 'a'), std::string(63, 'a') + "A"), "key_id");
  reject(with("\"3045\"", "\"304\""), "value");
  reject(with("{\n", "{ \n"), "canonical");
}
