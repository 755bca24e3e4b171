import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import { decodeBase64, decodeEnvelope, mapProduct, parseBody, parseJson, parseXml, tokenOf } from "../src/Api.js"

/** The JSON sample of the vendor page (seed 000/001), as printed there. */
const seedJson = `{
  "product": [
    {
      "product_id": 1,
      "imagesURL": [
        { "sequence": 1, "imagefilename": "sample string 2", "imageURL": "sample string 3" },
        { "sequence": 1, "imagefilename": "sample string 2", "imageURL": "sample string 3" }
      ],
      "images": {
        "image": [
          { "sequence": 1, "imagefilename": "sample string 2", "binaryimage": "sample string 3" },
          { "sequence": 1, "imagefilename": "sample string 2", "binaryimage": "sample string 3" }
        ]
      }
    }
  ],
  "token": "sample string 1",
  "count": 2,
  "queuecount": 3,
  "returncode": 4,
  "returnmsg": "sample string 5",
  "warnings": [ "sample string 1", "sample string 2" ],
  "version": "sample string 6"
}`

/** The XML sample of the vendor page, as printed there. */
const seedXml = `<result returncode="4" returnmsg="sample string 5" version="sample string 6" token="sample string 1" count="2" queuecount="3">
  <warnings>sample string 1</warnings>
  <warnings>sample string 2</warnings>
  <product product_id="1">
    <imagesURL sequence="1" imagefilename="sample string 2" imageURL="sample string 3" />
    <imagesURL sequence="1" imagefilename="sample string 2" imageURL="sample string 3" />
    <images>
      <image sequence="1" imagefilename="sample string 2" binaryimage="sample string 3" />
      <image sequence="1" imagefilename="sample string 2" binaryimage="sample string 3" />
    </images>
  </product>
</result>`

const right = <A>(e: Either.Either<A, unknown>): A => {
  if (Either.isLeft(e)) throw new Error(`expected Right, got Left(${JSON.stringify(e.left)})`)
  return e.right
}
const left = <E>(e: Either.Either<unknown, E>): E => {
  if (Either.isRight(e)) throw new Error(`expected Left, got Right(${JSON.stringify(e.right)})`)
  return e.left
}

const options = { source: "acceo", images: "binary" as const, maxImageBytes: 1024 }

describe("Api: the two formats of the seed page", () => {
  it("the seed's JSON and XML samples decode to the same envelope", () => {
    const fromJson = right(decodeEnvelope(right(parseBody(seedJson))))
    const fromXml = right(decodeEnvelope(right(parseBody(seedXml))))
    // The raw entries differ in type (JSON numbers, XML strings); everything else is equal...
    expect({ ...fromXml, product: null }).toEqual({ ...fromJson, product: null })
    expect(fromJson).toMatchObject({ count: 2, queuecount: 3, returncode: 4, returnmsg: "sample string 5", version: "sample string 6" })
    expect(fromJson.warnings).toEqual(["sample string 1", "sample string 2"])
    // "sample string 1" is not a usable token: the source refuses it rather than guessing.
    expect(left(tokenOf(fromJson))).toContain("not a non-negative decimal integer")
    // ...and the entries map to the same records, in both image modes.
    const [a, b] = [fromJson.product![0], fromXml.product![0]]
    expect(mapProduct(b, options)).toEqual(mapProduct(a, options))
    expect(mapProduct(b, { ...options, images: "url" })).toEqual(mapProduct(a, { ...options, images: "url" }))
    expect(mapProduct(a, { ...options, images: "url" }).records.map((r) => [r.productId, r.imageId, r.position, r.url])).toEqual([
      ["1", "sample string 2", 1, "sample string 3"],
      ["1", "sample string 2", 1, "sample string 3"]
    ])
  })

  it("numeric-looking XML attributes stay exact strings; product ids become canonical integers", () => {
    const xml = `<result returncode="0" returnmsg="" version="1" token="18446744073709551615" count="1" queuecount="0">` +
      `<product product_id="0009007199254740993"><images><image sequence="007" imagefilename="1e3" binaryimage="QUJD"/></images></product></result>`
    const envelope = right(decodeEnvelope(right(parseXml(xml))))
    expect(right(tokenOf(envelope))).toBe("18446744073709551615")
    const mapped = mapProduct(envelope.product![0], options)
    expect(mapped.records.map((r) => [r.productId, r.imageId, r.position, r.filename])).toEqual([["9007199254740993", "1e3", 7, "1e3"]])
  })

  it("JSON integers beyond 2^53 are kept exactly", () => {
    const tree = right(parseJson(`{"product":[{"product_id":9007199254740993,"images":{"image":[]}}],"token":"1","returncode":0}`))
    const envelope = right(decodeEnvelope(tree))
    expect(mapProduct(envelope.product![0], options).productId).toBe("9007199254740993")
  })
})

describe("Api: XML safety and strictness", () => {
  const wrap = (inner: string, attrs = "") => `<result returncode="0" returnmsg=""${attrs} count="0" queuecount="0">${inner}</result>`

  it("decodes the predefined entities and character references, and normalises literal whitespace in attributes", () => {
    const xml = wrap(
      `<warnings> a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#233; &#x1F45F;\r\nline </warnings>` +
        `<product product_id="1"><images><image sequence="1" imagefilename="x&#xA;y&#9;z&#13;" binaryimage="QUJD"/>` +
        `<image sequence="2" imagefilename="p\nq\tr" binaryimage="QUJD"/></images></product>`
    )
    const envelope = right(decodeEnvelope(right(parseXml(xml))))
    expect(envelope.warnings).toEqual([` a & b <c> "d" 'e' é 👟\nline `])
    expect(mapProduct(envelope.product![0], options).records.map((r) => r.filename)).toEqual(["x\ny\tz\r", "p q r"])
  })

  it.each([
    ["a DOCTYPE with an external entity", `<!DOCTYPE result [<!ENTITY x SYSTEM "file:///etc/passwd">]>` + wrap(`<warnings>&x;</warnings>`), "DOCTYPE"],
    ["a DOCTYPE with internal entities", `<!DOCTYPE result [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>` + wrap(`<warnings>&b;</warnings>`), "DOCTYPE"],
    ["an undefined entity", wrap(`<warnings>&nbsp;</warnings>`), "undefined entity"],
    ["a bare ampersand", `<result returncode="0" returnmsg="fish & chips" count="0" queuecount="0"></result>`, "bare '&'"],
    ["a bare ampersand in text", wrap(`<warnings>fish & chips</warnings>`), "'&'"],
    ["a reference to a character XML forbids", wrap(`<warnings>&#0;</warnings>`), "not an XML character"],
    ["'<' in an attribute value", `<result returncode="0" returnmsg="a<b" count="0" queuecount="0"></result>`, "contains '<'"],
    ["a mismatched closing tag", `<result returncode="0"></resul>`, "not well-formed"],
    ["two root elements", `<result returncode="0"/><result returncode="0"/>`, "root"],
    ["another root element", `<ImagesResult returncode="0"/>`, "expected one <result> root element"],
    ["text inside <product>", wrap(`<product product_id="1">oops</product>`), "unexpected text in <product>"],
    ["a repeated attribute", `<result returncode="0" returncode="1"/>`, "not well-formed"]
  ])("refuses %s", (_name, xml, reason) => {
    expect(left(parseXml(xml))).toContain(reason)
  })

  it("a billion-laughs body is refused quickly, whatever its size", () => {
    const levels = Array.from({ length: 9 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join("")
    const body = `<?xml version="1.0"?><!DOCTYPE result [<!ENTITY l0 "lol">${levels}]>` + wrap(`<warnings>&l9;</warnings>`)
    expect(left(parseXml(body))).toContain("DOCTYPE")
  })

  it("parseBody tells the formats apart by their first character (after a BOM and whitespace)", () => {
    expect(Either.isRight(parseBody(`\uFEFF  ${wrap("")}`))).toBe(true)
    expect(Either.isRight(parseBody(` \n{"returncode":0}`))).toBe(true)
    expect(left(parseBody("Service Unavailable"))).toBe("the body is neither JSON nor XML")
    expect(left(parseBody(""))).toBe("the body is empty")
    expect(left(parseBody(`{"returncode":`))).toContain("not valid JSON")
  })
})

describe("Api: strict base64", () => {
  it("decodes valid base64 exactly", () => {
    expect(Buffer.from(right(decodeBase64("QUJD", 10))).toString()).toBe("ABC")
    expect(Buffer.from(right(decodeBase64("QUI=", 10))).toString()).toBe("AB")
    expect(Buffer.from(right(decodeBase64("QQ==", 10))).toString()).toBe("A")
    const bytes = Uint8Array.from({ length: 256 }, (_, i) => i)
    expect([...right(decodeBase64(Buffer.from(bytes).toString("base64"), 256))]).toEqual([...bytes])
  })

  it.each([
    ["", "binaryimage is empty"],
    ["QUJ", "not a multiple of 4"],
    ["QU JD", "not a multiple of 4"],
    ["QUJD\nQUJD", "not a multiple of 4"],
    ["QU!D", "unexpected \"!\" at offset 2"],
    ["QU-_", "unexpected \"-\" at offset 2"],
    ["Q=JD", "unexpected \"=\" at offset 1"],
    ["QUJD====", "not valid base64"],
    ["QR==", "non-canonical"]
  ])("refuses %j", (text, reason) => {
    expect(left(decodeBase64(text, 100))).toContain(reason)
  })

  it("checks the size cap from the length alone, before looking at the characters", () => {
    // 4 MB of '!' would be invalid, but it is refused for its size first.
    expect(left(decodeBase64("!".repeat(4 * 1024 * 1024), 1024 * 1024))).toBe("the image is 3145728 bytes, over maxImageBytes (1 MiB)")
    expect(Either.isRight(decodeBase64("QUJD", 3))).toBe(true)
    expect(left(decodeBase64("QUJD", 2))).toContain("over maxImageBytes")
  })
})

describe("Api: mapping", () => {
  it("URL mode maps imageURL to url; an image without one is a dead letter", () => {
    const entry = { product_id: 5, imagesURL: [{ sequence: 2, imagefilename: "", imageURL: "https://cdn.example/a.png" }, { sequence: 3, imagefilename: "b.png" }] }
    const mapped = mapProduct(entry, { ...options, images: "url" })
    expect(mapped.records.map((r) => [r.imageId, r.filename, r.url, r.bytes])).toEqual([["2", null, "https://cdn.example/a.png", undefined]])
    expect(mapped.rejected.map((d) => d.error)).toEqual(["product 5: image \"b.png\" has no imageURL"])
  })

  it("an entry or image of the wrong shape is a dead letter, with long base64 cut short in the payload", () => {
    const noId = mapProduct({ images: { image: [] } }, options)
    expect(noId.rejected[0]!.error).toContain("product_id")
    const long = "A".repeat(400)
    const badImage = mapProduct({ product_id: 7, images: { image: [{ sequence: "x", imagefilename: "a", binaryimage: long }, { sequence: 1, binaryimage: "QUJD" }] } }, options)
    expect(badImage.records.map((r) => r.imageId)).toEqual(["1"])
    expect(badImage.rejected[0]!.error).toContain("product 7: unexpected image shape: sequence")
    expect(badImage.rejected[0]!.payload).toEqual({ product_id: "7", sequence: "x", imagefilename: "a", binaryimage: `${"A".repeat(64)}… (400 characters)` })
  })

  it("the URL route (endpoint: url) reads images.image[].imageURL; imagesURL only when images.image is empty", () => {
    const route = { ...options, images: "url" as const, endpoint: "url" as const }
    const entry = { product_id: 3, imagesURL: null, images: { image: [{ sequence: 2, imagefilename: "a.png", imageURL: "https://cdn.example/a.png" }, { sequence: 3, imagefilename: "b.png" }] } }
    const mapped = mapProduct(entry, route)
    expect(mapped.records.map((r) => [r.productId, r.imageId, r.position, r.url])).toEqual([["3", "a.png", 2, "https://cdn.example/a.png"]])
    expect(mapped.rejected.map((d) => d.error)).toEqual(["product 3: image \"b.png\" has no imageURL"])
    const inList = { product_id: 3, imagesURL: [{ sequence: 1, imagefilename: "u.png", imageURL: "https://cdn.example/u.png" }], images: { image: [] } }
    expect(mapProduct(inList, route).records.map((r) => r.url)).toEqual(["https://cdn.example/u.png"])
    // The other routes keep their own shape: URLs in imagesURL, never in images.image.
    expect(mapProduct(entry, { ...options, images: "url" }).records).toEqual([])
  })

  it("binary mode reads images.image and ignores imagesURL (and the other way round)", () => {
    const entry = { product_id: 1, imagesURL: [{ sequence: 1, imagefilename: "u.png", imageURL: "http://x/u.png" }], images: { image: [{ sequence: 1, imagefilename: "b.png", binaryimage: "QUJD" }] } }
    expect(mapProduct(entry, options).records.map((r) => r.imageId)).toEqual(["b.png"])
    expect(mapProduct(entry, { ...options, images: "url" }).records.map((r) => r.imageId)).toEqual(["u.png"])
    expect(mapProduct({ product_id: 1, images: null, imagesURL: null }, options).records).toEqual([])
  })
})
