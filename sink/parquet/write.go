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
//
// Rows are converted one by one and written to parquet-go in batches, which
// costs far less than a WriteRows call per row (parquet-go then writes each
// column's values of up to 64 rows at once). Batching leaves every cut where
// writing row by row puts it: a batch ends before a row whose page or row
// group is cut first, and after a row that may reach parquet-go's own cut
// (its estimate above the limit), so parquet-go checks its buffer size after
// exactly the rows it would have checked it after one at a time, and every
// other row leaves each buffer below the page size. The row-group test reads
// Writer.Size when a batch is written and when a page is cut (a compressed
// page and its header may take more than its buffer did) and adds the
// estimates of the rows since, an upper bound of what Writer.Size would say
// (buffers only grow in between); only when that bound crosses the limit is
// the batch written and Writer.Size read again. TestBatchedWritesSameBytes
// compares the bytes with writing row by row.
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
	rows       []pq.Row // the batch: converted, not yet written
	size       int64    // w.Size() when the batch started
	batchEst   int64    // estimated bytes of the batch's rows
	recs       []byte   // copies of the batch's records (writeCopy)
	batch      int      // rows in a full batch
}

// Estimated buffer bytes of a value beside its own bytes: parquet-go keeps
// an offset, a row index and levels for each.
const valueOverhead = 24

// Batch bounds: rows, and bytes of records copied by writeCopy.
const (
	batchRows  = 128
	batchBytes = 1 << 20
)

// writeCopy is write for a record that changes after the call (a run
// reader's buffer): the batch keeps a copy.
func (p *pageWriter) writeCopy(rec []byte) error {
	if len(p.recs)+len(rec) > cap(p.recs) && len(p.rows) > 0 {
		if err := p.writeBatch(); err != nil {
			return err
		}
	}
	if len(p.recs)+len(rec) > cap(p.recs) {
		p.recs = make([]byte, 0, max(batchBytes, len(rec)))
	}
	off := len(p.recs)
	p.recs = append(p.recs, rec...)
	return p.write(p.recs[off:])
}

// write adds the row of rec, which must not change until the batch is
// written (the row's values point into it).
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
	if p.groupRows > 0 && p.size+p.batchEst-p.groupBase+total > p.groupLimit {
		// Maybe past the limit: decide on the exact size, as row by row.
		if err := p.writeRows(); err != nil {
			return err
		}
		if p.w.Size()-p.groupBase+total > p.groupLimit {
			if err := p.flushGroup(); err != nil {
				return err
			}
		}
	}
	var cols []*pq.ColumnWriter
	for leaf, n := range p.rowEst {
		if p.pageEst[leaf] > 0 && p.pageEst[leaf]+n > p.pageLimit {
			if cols == nil {
				if err := p.writeRows(); err != nil {
					return err
				}
				cols = p.w.ColumnWriters()
			}
			if err := cols[leaf].Flush(); err != nil {
				return fmt.Errorf("parquet: write page: %w", err)
			}
			p.pageEst[leaf] = 0
		}
		p.pageEst[leaf] += n
	}
	if cols != nil {
		p.size = p.w.Size() // a page's compressed bytes and header replaced its buffer
	}
	p.rows = append(p.rows, row)
	p.batchEst += total
	p.groupRows++
	// A value at or above parquet-go's cut made a page of its own: parquet-go
	// must see its buffer after this row, as row by row.
	cut := false
	for leaf := range p.pageEst {
		if p.pageEst[leaf] > p.pageLimit {
			p.pageEst[leaf] = 0
			cut = true
		}
	}
	if cut || len(p.rows) >= p.batch {
		return p.writeBatch()
	}
	return nil
}

// writeBatch writes the batch's rows to parquet-go and frees the space they
// took: no row may be in flight.
func (p *pageWriter) writeBatch() error {
	if err := p.writeRows(); err != nil {
		return err
	}
	p.conv.reset()
	p.recs = p.recs[:0]
	return nil
}

// writeRows writes the batch's rows to parquet-go, keeping the converter's
// space and the copied records: the row being decided on lives there.
func (p *pageWriter) writeRows() error {
	if len(p.rows) > 0 {
		if _, err := p.w.WriteRows(p.rows); err != nil {
			return fmt.Errorf("parquet: write row: %w", err)
		}
	}
	clear(p.rows)
	p.rows = p.rows[:0]
	p.size = p.w.Size()
	p.batchEst = 0
	return nil
}

func (p *pageWriter) flushGroup() error {
	if err := p.w.Flush(); err != nil {
		return fmt.Errorf("parquet: write row group: %w", err)
	}
	p.rowGroups++
	p.groupRows = 0
	p.groupBase = p.w.Size()
	p.size = p.groupBase
	clear(p.pageEst)
	return nil
}

func (p *pageWriter) close() error {
	if err := p.writeBatch(); err != nil {
		return err
	}
	if p.groupRows > 0 {
		p.rowGroups++
	}
	if err := p.w.Close(); err != nil {
		return fmt.Errorf("parquet: write footer: %w", err)
	}
	return nil
}
