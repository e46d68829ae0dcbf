package config

import (
	"regexp"
	"slices"
)

// awsRegions are the AWS regions, taken from the AWS SDK's partitions.json
// (aws-sdk-go-v2 v1.48.0: aws, aws-cn, aws-us-gov, aws-eusc and the ISO
// partitions, without the "*-global" pseudo-regions). TestRegionsMatchSDK
// compares them with the SDK in go.mod, so an upgrade that brings a new region
// fails until it is added here.
var awsRegions = []string{
	"af-south-1",
	"ap-east-1", "ap-east-2",
	"ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
	"ap-south-1", "ap-south-2",
	"ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
	"ca-central-1", "ca-west-1",
	"cn-north-1", "cn-northwest-1",
	"eu-central-1", "eu-central-2",
	"eu-isoe-west-1",
	"eu-north-1",
	"eu-south-1", "eu-south-2",
	"eu-west-1", "eu-west-2", "eu-west-3",
	"eusc-de-east-1",
	"il-central-1",
	"me-central-1", "me-south-1", "me-west-1",
	"mx-central-1",
	"sa-east-1", "sa-west-1",
	"us-east-1", "us-east-2",
	"us-gov-east-1", "us-gov-west-1",
	"us-iso-east-1", "us-iso-west-1",
	"us-isob-east-1", "us-isob-west-1",
	"us-isof-east-1", "us-isof-south-1",
	"us-west-1", "us-west-2",
}

// IsAWSRegion reports whether r is a known AWS region name.
func IsAWSRegion(r string) bool { return slices.Contains(awsRegions, r) }

// anyRegionRE is what an S3-compatible store's region may look like (MinIO's
// "us-east-1", R2's "auto", Garage's "garage"): a name, nothing more.
var anyRegionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// closestRegion returns the known AWS region nearest to r by edit distance,
// if it is near enough to be a typo of it ("" otherwise).
func closestRegion(r string) string {
	best, bestD := "", 4 // at most 3 edits
	for _, k := range awsRegions {
		if d := editDistance(r, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
