package clip

// Ports the byte-level BPE of openai/CLIP clip/simple_tokenizer.py: bytes_to_unicode, the
// vocabulary layout built from the merges file, and SimpleTokenizer.bpe.

import "strings"

// endOfWord marks the last symbol of a word.
const endOfWord = "</w>"

// byteOrder and byteEncoder are bytes_to_unicode(): byteOrder lists the bytes in the order of
// the dict (the printable ranges first, then the others), byteEncoder maps a byte to its
// printable character.
var byteOrder, byteEncoder, byteDecoder = func() ([]byte, [256]rune, map[rune]byte) {
	var order []byte
	var enc [256]rune
	printable := func(b int) bool { return b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF }
	for b := 0; b < 256; b++ {
		if printable(b) {
			order = append(order, byte(b))
			enc[b] = rune(b)
		}
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !printable(b) {
			order = append(order, byte(b))
			enc[b] = rune(256 + n)
			n++
		}
	}
	dec := make(map[rune]byte, 256)
	for b, r := range enc {
		dec[r] = byte(b)
	}
	return order, enc, dec
}()

// symbolPair is a merge (first, second) of the BPE merges list.
type symbolPair struct{ first, second string }

// byteEncode maps the UTF-8 bytes of s to bytes_to_unicode characters.
func byteEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteEncoder[s[i]])
	}
	return b.String()
}

// bpe ports SimpleTokenizer.bpe: token (byte-encoded, non-empty) is split into characters, the
// last one gets "</w>", and the pair of lowest merge rank is merged everywhere (left to right)
// until no pair has a rank.
func bpe(ranks map[symbolPair]int, token string) []string {
	var word []string
	for _, r := range token {
		word = append(word, string(r))
	}
	word[len(word)-1] += endOfWord
	for len(word) > 1 {
		best, bestRank := -1, 0
		for i := 0; i+1 < len(word); i++ {
			if r, ok := ranks[symbolPair{word[i], word[i+1]}]; ok && (best < 0 || r < bestRank) {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		first, second := word[best], word[best+1]
		merged := make([]string, 0, len(word)-1)
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == first && word[i+1] == second {
				merged = append(merged, first+second)
				i += 2
			} else {
				merged = append(merged, word[i])
				i++
			}
		}
		word = merged
	}
	return word
}
