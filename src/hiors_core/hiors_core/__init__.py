"""hiors_core: Episode and sample schema, rejection sampling (threshold schedules, filters, chunk labelling), the rosbag2 episode log, message<->numpy conversion and config loading."""
