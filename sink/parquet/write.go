package parquet

import (
	"fmt"

	pq "github.com/parquet-go/parquet-go"
)

// pageWriter writes rows and decides page and row-group boundaries itself,
// from the rows alone, so that they are the same on every run.
//
// parquet-go cuts a page once its buffer has reached the page size, which
// lets the row that crosses the limit overflow it; here a column's page is
// flushed before a row whose value would take its estimated size past the
// limit. The estimate is at least parquet-go's buffer size of the values
// (the value bytes and the per-value offsets and levels it keeps), which is
// at least the page's uncompressed size, so parquet-go's own cut (at 98% of
// the page size) never comes first. Row groups are flushed the same way
// against Writer.Size, which counts compressed pages and buffered values
// uncompressed: an upper bound of the row group's compressed size, less an
// eighth kept for page headers and statistics.
type pageWriter struct {
	w          *pq.Writer
	conv       *converter
	pageLimit  int64
	groupLimit int64
	pageEst    []int64 // per leaf column: estimated bytes of the open page
	rowEst     []int64 // per leaf column: the row being written
	groupBase  int64   // w.Size() when the open row group started
	groupRows  int
	rowGroups  int
	rows       []pq.Row
}

// Estimated buffer bytes of a value beside its own bytes: parquet-go keeps
// an offset, a row index and levels for each.
const valueOverhead = 24

func (p *pageWriter) write(rec []byte) error {
	row := p.conv.convert(rec)
	var total int64
	clear(p.rowEst)
	for _, v := range row {
		n := int64(valueOverhead)
		if !v.IsNull() && v.Kind() == pq.ByteArray {
			n += int64(len(v.ByteArray()))
		}
		p.rowEst[v.Column()] += n
	}
	for _, n := range p.rowEst {
		total += n
	}
	if p.groupRows > 0 && p.w.Size()-p.groupBase+total > p.groupLimit {
		if err := p.flushGroup(); err != nil {
			return err
		}
	}
	cols := p.w.ColumnWriters()
	for leaf, n := range p.rowEst {
		if p.pageEst[leaf] > 0 && p.pageEst[leaf]+n > p.pageLimit {
			if err := cols[leaf].Flush(); err != nil {
				return fmt.Errorf("parquet: write page: %w", err)
			}
			p.pageEst[leaf] = 0
		}
		p.pageEst[leaf] += n
	}
	p.rows = append(p.rows[:0], row)
	if _, err := p.w.WriteRows(p.rows); err != nil {
		return fmt.Errorf("parquet: write row: %w", err)
	}
	// A value at or above parquet-go's cut made a page of its own.
	for leaf := range p.pageEst {
		if p.pageEst[leaf] > p.pageLimit {
			p.pageEst[leaf] = 0
		}
	}
	p.groupRows++
	return nil
}

func (p *pageWriter) flushGroup() error {
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("parquet: write row group: %w", err)
	}
	p.rowGroups++
	p.groupRows = 0
	p.groupBase = p.w.Size()
	clear(p.pageEst)
	return nil
}

func (p *pageWriter) close() error {
	if p.groupRows > 0 {
		p.rowGroups++
	}
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("parquet: write footer: %w", err)
	}
	return nil
}
