// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.

/// `--help`: chpstat's usage text (its options, descriptions and order), for this program.
enum ChpstatHelp {
    static func text(programName: String) -> String {
        """
        Usage: \(programName) [CHPIDS] [ACTIONS]

        Use chpstat to view channel-path statistics such as utilization and throughput, and to
        query and control the status of the channel-path statistics function.

        When run without further options, data for all channel-paths is displayed repeatedly
        with a 5 second delay in table format. You can limit output to specific channel-paths
        by listing the associated CHPIDs on the command line.

        ACTIONS
          -s, --status            Show channel-path statistics status
          -e, --enable            Enable channel-path statistics
          -d, --disable           Disable channel-path statistics
          -l, --list-columns      List available table columns
          -L, --list-keys         List available data keys
          -h, --help              Print this help, then exit
          -v, --version           Print version information, then exit

        OPTIONS
          -n, --iterations NUM    Display NUM reports before ending (0 for no end)
          -i, --interval NUM      Pause NUM seconds between display
          -c, --columns COL,..    Show only specified columns in table output
          -k, --keys KEY,..       Show only data for specified keys in list output
          -a, --all               Show all table columns and key data
              --scale UNIT        Scale BPS values by UNIT (number, suffix or auto)
              --cmg CMG,..        Show data for specified CMGs only
              --format FORMAT     List data in specified FORMAT (json json-seq jsonl pairs csv)
              --chars             List channel-path measurement characteristics
              --util              List unprocessed utilization data
              --metrics           List performance metrics
              --no-ansi           Do not use ANSI terminal codes in output
              --no-prefix         Hide key prefix in pairs output format
              --debug             Print debugging information

        """
    }
}
