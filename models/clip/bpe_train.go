package clip

import (
	"fmt"
	"sort"
	"strings"
)

// TrainBPE learns a small CLIP byte-level BPE from a corpus of words — the classic algorithm of
// Sennrich et al. that produced CLIP's merges file: every word (as CleanText and the CLIP split
// regex see it) starts as its bytes_to_unicode characters with "</w>" on the last, and the most
// frequent adjacent pair is merged (ties broken by the pair's text) until every distinct word of
// the corpus is a single symbol or maxMerges is reached. The vocabulary is laid out as LoadBPE lays
// out openai's: the 256 byte characters, the same with "</w>", one token per merge, then
// <|startoftext|> and <|endoftext|>. A tokenizer of this vocabulary encodes the corpus' words as one
// token each and any other text byte by byte — a small vocabulary for small text encoders (the toy
// world's base model).
func TrainBPE(corpus []string, maxMerges int) (*Tokenizer, error) {
	counts := map[string]int{}
	for _, text := range corpus {
		for _, piece := range pretokenizeRE.FindAllString(CleanText(text), -1) {
			counts[byteEncode(piece)]++
		}
	}
	type word struct {
		syms  []string
		count int
	}
	var words []*word
	for w, c := range counts {
		runes := []rune(w)
		syms := make([]string, len(runes))
		for i, r := range runes {
			syms[i] = string(r)
		}
		syms[len(syms)-1] += endOfWord
		words = append(words, &word{syms: syms, count: c})
	}
	sort.Slice(words, func(i, j int) bool { return strings.Join(words[i].syms, " ") < strings.Join(words[j].syms, " ") })
	var merges [][2]string
	for len(merges) < maxMerges {
		pairs := map[symbolPair]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pairs[symbolPair{w.syms[i], w.syms[i+1]}] += w.count
			}
		}
		if len(pairs) == 0 {
			break
		}
		var best symbolPair
		bestN := -1
		for p, n := range pairs {
			if n > bestN || n == bestN && p.first+" "+p.second < best.first+" "+best.second {
				best, bestN = p, n
			}
		}
		merges = append(merges, [2]string{best.first, best.second})
		for _, w := range words {
			var out []string
			for i := 0; i < len(w.syms); i++ {
				if i+1 < len(w.syms) && w.syms[i] == best.first && w.syms[i+1] == best.second {
					out = append(out, best.first+best.second)
					i++
				} else {
					out = append(out, w.syms[i])
				}
			}
			w.syms = out
		}
	}
	vocabList := make([]string, 0, 512+len(merges)+2)
	for _, b := range byteOrder {
		vocabList = append(vocabList, string(byteEncoder[b]))
	}
	for _, b := range byteOrder {
		vocabList = append(vocabList, string(byteEncoder[b])+endOfWord)
	}
	for _, m := range merges {
		vocabList = append(vocabList, m[0]+m[1])
	}
	vocabList = append(vocabList, StartOfText, EndOfText)
	vocab := make(map[string]int, len(vocabList))
	for i, tok := range vocabList {
		if _, dup := vocab[tok]; dup {
			return nil, fmt.Errorf("clip.TrainBPE: token %q learned twice", tok)
		}
		vocab[tok] = i
	}
	return NewTokenizer(vocab, merges)
}
